import ExporterConfig
import FuzzSupport

/// Where relative paths of the fuzzed files resolve: a folder that does not exist, so that no input names a
/// file of this machine by a relative path (absolute ones are only checked for readability).
private let baseDirectory = "/nonexistent/mlops-exporter-fuzz"

/// The configuration loader and the web-configuration loader on the same YAML text (the whole input).
///
/// Checks that neither crashes, that a rejection lists at least one problem, and that every problem is
/// located as documented (line and column from 1, or 0 when unknown) with a one-line message.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let text = fuzzText(data, size)
    do {
        _ = try ConfigLoader.parse(text, file: "models.yaml", baseDirectory: baseDirectory, referencesMustExist: false)
    } catch {
        check(error)
    }
    do {
        _ = try WebConfigLoader.parse(text, file: "web.yaml", baseDirectory: baseDirectory)
    } catch {
        check(error)
    }
    return 0
}

private func check(_ errors: ConfigErrors) {
    invariant(!errors.errors.isEmpty, "a rejection without a problem")
    for error in errors.errors {
        invariant(error.line >= 0 && error.column >= 0, "location \(error.line):\(error.column)")
        invariant(!error.message.contains("\n"), "a message on several lines: \(error.description)")
    }
}
