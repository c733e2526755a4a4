import Ingestion
import Testing

@Suite struct UTF8PrefixTests {
    /// A cut never splits a character's bytes: it falls back to the start of the character it would split.
    @Test(arguments: [
        ("abc", 5, "abc"), ("abc", 3, "abc"), ("abc", 2, "ab"), ("aé", 2, "a"), ("aé", 3, "aé"), ("€x", 2, ""),
        ("€x", 3, "€"), ("😀", 3, ""), ("😀a", 4, "😀"), ("", 0, ""), ("ab", 0, ""),
    ])
    func cutsBetweenCharacters(text: String, maxBytes: Int, expected: String) {
        #expect(String(text.utf8Prefix(maxBytes: maxBytes)) == expected)
    }

    /// A string over the bound keeps its first scalars within the bound less the 3 bytes of the `…` it ends with.
    @Test func shortenedEndsWithAnEllipsisWithinTheBound() {
        #expect("abcdef".shortened(toUTF8Bytes: 6) == "abcdef")
        #expect("abcdefg".shortened(toUTF8Bytes: 6) == "abc…")
        #expect("aé€g".shortened(toUTF8Bytes: 6) == "aé…")
        #expect("aé€g".shortened(toUTF8Bytes: 6).utf8.count <= 6)
    }
}
