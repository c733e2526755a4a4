import Testing

@testable import HTTPServer

@Suite struct ByteArrayPoolTests {
    /// Bytes as the slice of an input buffer the parsers copy from.
    private func copy(_ pool: ByteArrayPool, _ bytes: [UInt8]) -> [UInt8] {
        bytes.withUnsafeBufferPointer { pool.copy($0[...]) }
    }

    @Test func aKeptArrayIsReusedWithItsCapacity() {
        let pool = ByteArrayPool()
        var first = copy(pool, Array(repeating: 7, count: 100))
        #expect(first == Array(repeating: 7, count: 100))
        let capacity = first.capacity
        pool.give(&first)
        #expect(first.isEmpty)
        #expect(pool.keptCount == 1)
        let second = copy(pool, [1, 2, 3])
        #expect(second == [1, 2, 3])
        #expect(second.capacity == capacity)
        #expect(pool.keptCount == 0)
        var taken = pool.take()
        #expect(taken.isEmpty)
        pool.give(&taken)  // no capacity: not kept
        #expect(pool.keptCount == 0)
    }

    @Test func aHeadIsWrittenInTheLatestArrayLargeEnough() {
        let pool = ByteArrayPool()
        var large = [UInt8](repeating: 1, count: 1000)
        var small = [UInt8](repeating: 2, count: 10)
        let largeCapacity = large.capacity
        pool.give(&large)
        pool.give(&small)
        let taken = pool.take(minimumCapacity: 500)
        #expect(taken.isEmpty)
        #expect(taken.capacity == largeCapacity)
        #expect(pool.keptCount == 1)
        let rest = pool.take(minimumCapacity: 5000)  // none large enough: the latest, to grow
        #expect(rest.isEmpty)
        #expect(rest.capacity >= 10 && rest.capacity < 500)
        #expect(pool.keptCount == 0)
        let head = ByteWriter.array(capacity: 4, reusing: pool.take(minimumCapacity: 4)) { $0.write("abcd") }
        #expect(head == Array("abcd".utf8))
    }

    @Test func storageStillSharedIsLeftToItsOtherHolders() {
        let pool = ByteArrayPool()
        var given = copy(pool, [1, 2, 3, 4])
        let other = given  // an observer's share
        pool.give(&given)
        let reused = copy(pool, [9, 9])
        #expect(reused == [9, 9])
        #expect(other == [1, 2, 3, 4])
        var kept = other
        pool.give(&kept)
        let taken = pool.take()
        #expect(taken.isEmpty)
        #expect(other == [1, 2, 3, 4])
    }

    @Test func theBoundsHold() {
        let pool = ByteArrayPool()
        var large = [UInt8](repeating: 0, count: ByteArrayPool.maxCapacity + 1)
        pool.give(&large)
        #expect(pool.keptCount == 0)
        for _ in 0..<(ByteArrayPool.maxArrays + 5) {
            var array = copy(pool, [1])
            let spare = [UInt8](repeating: 2, count: 8)
            pool.give(&array)
            var another = spare
            pool.give(&another)
        }
        #expect(pool.keptCount == ByteArrayPool.maxArrays)
    }

    @Test func receivedLinesAreTakenOutOfHeaders() {
        let pool = ByteArrayPool()
        let section = Array("Host: a\r\nX: y\r\n".utf8)
        var headers = HTTPHeaders(receivedLines: section, count: 2)
        pool.give(linesOf: &headers)
        #expect(headers.receivedLines == nil)
        #expect(headers.count == 0)
        #expect(pool.keptCount == 1)
        var optional: [UInt8]? = Array("body".utf8)
        pool.give(&optional)
        #expect(optional == nil)
        #expect(pool.keptCount == 2)
    }
}
