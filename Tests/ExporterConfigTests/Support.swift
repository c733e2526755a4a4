@testable import ExporterConfig

/// The errors of configuration `yaml` (named `test.yaml`) as `line:column: field: message` strings; none
/// when it loads.
func locatedErrors(_ yaml: String) -> [String] {
    do {
        _ = try ConfigLoader.parse(yaml, file: "test.yaml")
        return []
    } catch {
        return error.errors.map { "\($0.line):\($0.column): \($0.field): \($0.message)" }
    }
}

/// `field: message` of each problem of `yaml` read as a file (no reference needs to exist).
func fileProblems(_ yaml: String) -> [String] {
    do {
        _ = try ConfigLoader.parse(yaml, file: "f.yaml", referencesMustExist: false)
        return []
    } catch {
        return error.errors.map { "\($0.field): \($0.message)" }
    }
}

/// A regression model whose only collector is `service` with options `options` (YAML lines indented by 10).
func withOptions(_ options: String) -> String {
    """
    models:
      - name: m
        task: regression
        versions: [v1]
        collectors:
          - name: service
            options:
    \(options)
    """
}
