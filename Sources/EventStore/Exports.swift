// Transition: the utilities that moved to GridBase (Hash, ConditionLock, monotonicNanos, TimeFormat, Quantity,
// BinaryWriter, ...) stay visible to code that imports EventStore for them. Remove once every module imports
// GridBase itself (docs/ARCHITECTURE.md, "Transitions").
@_exported import GridBase
