import Ingestion
import Testing

@testable import Capture

/// ``ValueReader/numericClass(_:)``, the direct reader's lookup of a class spelled as a number: what the
/// ``ValueReader/numericClasses`` table gives, by a scan for few classes and by the table for many.
@Suite("Numeric classes")
struct NumericClassTests {
    /// Class lists: two classes, names, a reversed pair, spellings of the same numbers, 16 and 17 integer classes
    /// (around the scan's limit), and forty classes spelled "0.5" ... "39.5" with "0.50" and a name.
    static let classLists: [[String]] = [
        ["0", "1"], ["no", "yes"], ["1", "0"], ["-0", "0", "1.0", "1", "2.5", "1e0", "x"],
        (0..<16).map(String.init), (0..<17).map(String.init),
        (0..<40).map { "\($0).5" } + ["0.50", "z"],
    ]

    @Test("the scan finds what the table finds", arguments: classLists)
    func sameAsTable(_ classes: [String]) throws {
        let reader = ValueReader(
            schema: try Schema(task: .classification, classes: classes, features: [FeatureSpec("x", .numeric)]))
        var probes: [Double] = [0, -0.0, 1, 2, 2.5, 1.5, 0.5, 15, 16, 39.5, 100, -1, .infinity]
        probes += classes.compactMap { Double($0) }
        for value in probes {
            #expect(reader.numericClass(value) == reader.numericClasses[value], "\(classes) \(value)")
        }
    }
}
