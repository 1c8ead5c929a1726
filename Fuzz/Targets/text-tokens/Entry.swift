import FuzzTargets

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    FuzzTargets.textTokens.fuzz(start, count)
}
