/// Stops the process when `condition` is false, so that libFuzzer keeps the input as a crash artifact.
/// For properties the code under test promises (beyond not crashing), e.g. "consumed ≤ input".
public func invariant(
    _ condition: Bool, _ message: @autoclosure () -> String, file: StaticString = #fileID, line: UInt = #line
) {
    if !condition { fatalError("invariant violated: \(message())", file: file, line: line) }
}
