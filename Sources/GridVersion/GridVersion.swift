/// The release every executable of this package reports with `--version`: the one place it is written.
/// `make install` and the man pages take it from here too (`make version` prints it).
public enum GridVersion {
    /// Semantic version of this source tree.
    public static let current = "0.19.0"
}
