import Foundation

/// Runs a program in the project's Python venv (scipy, Evidently, scikit-learn, fairlearn) as an independent
/// oracle at test time: one process per call, the input as JSON on stdin, the result as JSON on stdout.
/// Fails with a clear message when the venv is missing.
enum PythonOracle {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    static let python = packageRoot.appendingPathComponent(".venv/bin/python").path

    /// Runs `script` with `input` encoded as JSON on stdin and decodes its stdout as `Output`.
    static func run<Input: Encodable, Output: Decodable>(
        _ script: String, input: Input, as output: Output.Type
    ) throws -> Output {
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw Failure(
                description:
                    "the oracle venv is missing: \(python) (run scripts/install-deps --python; the README test "
                    + "command does)")
        }
        let data = try JSONEncoder().encode(input)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["-c", script]
        let stdin = Pipe()
        let stdout = Pipe()
        let errorFile = FileManager.default.temporaryDirectory.appendingPathComponent(
            "python-oracle-\(UUID().uuidString).err")
        guard FileManager.default.createFile(atPath: errorFile.path, contents: nil) else {
            throw Failure(description: "cannot create \(errorFile.path)")
        }
        defer { try? FileManager.default.removeItem(at: errorFile) }
        let stderr = try FileHandle(forWritingTo: errorFile)
        defer { try? stderr.close() }
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        let writer = Thread {
            try? stdin.fileHandleForWriting.write(contentsOf: data)
            try? stdin.fileHandleForWriting.close()
        }
        writer.start()
        let result = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let message = (try? String(contentsOf: errorFile, encoding: .utf8)) ?? ""
            throw Failure(description: "oracle exited with \(process.terminationStatus): \(message)")
        }
        return try JSONDecoder().decode(Output.self, from: result)
    }

    /// Runs `script`, which defines `handle(op)` returning a dictionary of strings, on each of `operations`
    /// (JSON on stdin). An exception in any operation fails the call (with its message): a test never compares
    /// against an oracle that did not answer.
    static func results<Operation: Encodable>(script: String, _ operations: [Operation]) throws -> [[String: String]] {
        let results = try run(script + driver, input: operations, as: [[String: String]].self)
        guard results.count == operations.count else {
            throw Failure(description: "oracle returned \(results.count) results for \(operations.count) operations")
        }
        for (i, result) in results.enumerated() {
            if let error = result["error"] { throw Failure(description: "oracle, operation \(i): \(error)") }
        }
        return results
    }

    /// Calls `handle` on every operation read from stdin and writes the results to stdout.
    static let driver = #"""

        import sys as _sys, json as _json
        _results = []
        for _op in _json.load(_sys.stdin):
            try:
                _results.append(handle(_op))
            except Exception as error:
                _results.append({"error": type(error).__name__ + ": " + str(error)})
        _json.dump(_results, _sys.stdout)
        """#
}
