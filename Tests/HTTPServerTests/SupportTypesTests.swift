import Testing

@testable import HTTPServer

@Suite("Headers, addresses, encoding")
struct SupportTypesTests {
    @Test func headersLookupIsCaseInsensitiveAndOrdered() {
        var headers: HTTPHeaders = ["Content-Type": "text/plain", "Set-Cookie": "a=1"]
        headers.add(name: "set-cookie", value: "b=2")
        #expect(headers["content-type"] == "text/plain")
        #expect(headers.values(for: "SET-COOKIE") == ["a=1", "b=2"])
        #expect(headers.contains("Content-TYPE"))
        #expect(!headers.contains("Content-Length"))
        headers.replaceOrAdd(name: "SET-COOKIE", value: "c=3")
        #expect(headers.values(for: "set-cookie") == ["c=3"])
        headers.remove(name: "content-type")
        #expect(headers.count == 1)
        #expect(headers.map(\.name) == ["SET-COOKIE"])
    }

    @Test func tokenCharactersAreRFC9110Tchar() {
        let tchar = Set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)
        for byte in UInt8.min...UInt8.max {
            #expect(ASCII.isTokenCharacter(byte) == tchar.contains(byte), "byte \(byte)")
        }
    }

    @Test func headerTokenMatching() {
        let headers: HTTPHeaders = ["Connection": "keep-alive, Upgrade", "Accept-Encoding": "gzip;q=1"]
        #expect(headers.containsToken("upgrade", in: "connection"))
        #expect(!headers.containsToken("close", in: "connection"))
        #expect(!headers.containsToken("gzip", in: "accept-encoding"))  // parameters are part of the element
    }

    @Test(arguments: [
        ("0.0.0.0:9464", "0.0.0.0:9464", 9464),
        ("[::1]:0", "[::1]:0", 0),
        (":9464", ":9464", 9464),
        ("*:80", ":80", 80),
        ("localhost:8080", "127.0.0.1:8080", 8080),
    ])
    func validListenAddresses(text: String, normalized: String, port: Int) throws {
        let address = try ListenAddress(text)
        #expect(address.description == normalized)
        #expect(address.port == port)
    }

    @Test(arguments: ["9464", "host:9464", "1.2.3:80", "[::1:80", "[zz]:80", "0.0.0.0:65536", "0.0.0.0:-1", "0.0.0.0:"])
    func invalidListenAddresses(text: String) {
        let error = #expect(throws: HTTPServerError.self) { try ListenAddress(text) }
        #expect(error?.kind == .invalidAddress)
        #expect(error?.description.contains(text) == true)
    }

    /// Two addresses that cannot both be bound: the same port and address, or a wildcard covering the other's.
    @Test(arguments: [
        (":80", "127.0.0.1:80", true), ("*:80", "[::1]:80", true), ("0.0.0.0:80", "127.0.0.1:80", true),
        ("127.0.0.1:80", "localhost:80", true), ("[::]:80", "[::1]:80", true), ("[::1]:80", "[0::1]:80", true),
        ("0.0.0.0:80", "[::1]:80", false), ("[::]:80", "127.0.0.1:80", false), ("127.0.0.1:80", "127.0.0.2:80", false),
        (":80", ":81", false), (":0", ":0", false), ("0.0.0.0:0", "127.0.0.1:0", false),
    ])
    func overlappingListenAddresses(a: String, b: String, overlap: Bool) throws {
        let (x, y) = (try ListenAddress(a), try ListenAddress(b))
        #expect(x.overlaps(y) == overlap)
        #expect(y.overlaps(x) == overlap)
    }

    @Test func responseHeadEncoding() {
        var date = DateCache()
        var buffer: [UInt8] = []
        let dropped = HTTP1ResponseEncoder.encodeHead(
            status: 404, headers: ["X-A": "1", "Connection": "keep-alive", "Bad Name": "x"], contentLength: 12,
            connection: .close, date: &date, into: &buffer)
        let text = String(decoding: buffer, as: UTF8.self)
        #expect(dropped == 2)
        #expect(text.hasPrefix("HTTP/1.1 404 Not Found\r\nX-A: 1\r\nContent-Length: 12\r\nConnection: close\r\nDate: "))
        #expect(text.hasSuffix(" GMT\r\n\r\n"))
    }

    @Test func unknownStatusHasEmptyReason() {
        var date = DateCache()
        var buffer: [UInt8] = []
        HTTP1ResponseEncoder.encodeHead(
            status: 299, headers: [:], contentLength: nil, connection: .none, date: &date, into: &buffer)
        #expect(String(decoding: buffer, as: UTF8.self).hasPrefix("HTTP/1.1 299 \r\nDate: "))
    }

    /// A head of field lines fits in ``HTTP1ResponseEncoder/headRoom`` bytes besides its lines, whatever its status
    /// and framing (a ``ByteWriter`` traps on overflow), and writes what the array encoder writes.
    @Test func aHeadOfFieldLinesFitsItsRoom() {
        let lines = Array("X-A: 1\r\nX-B: 2\r\n".utf8)
        var longest = 0
        for status in 200...999 {
            for (contentLength, chunked) in [(Int?.none, false), (Int.max, false), (Int?.none, true), (Int.max, true)] {
                for connection in [HTTP1ResponseEncoder.ConnectionField.none, .keepAlive, .close] {
                    var date = DateCache()
                    let written = ByteWriter.array(capacity: HTTP1ResponseEncoder.headRoom + lines.count + 6 + 2) {
                        writer in
                        HTTP1ResponseEncoder.encodeHead(
                            status: status, fieldLines: lines, lastLinePrefix: Array("X-Id: ".utf8),
                            lastLineValue: "", hasDate: false, contentLength: contentLength, chunked: chunked,
                            connection: connection, date: &date, into: &writer)
                    }
                    var array: [UInt8] = []
                    HTTP1ResponseEncoder.encodeHead(
                        status: status, fieldLines: lines, lastLinePrefix: Array("X-Id: ".utf8), lastLineValue: "",
                        hasDate: false, contentLength: contentLength, chunked: chunked, connection: connection,
                        date: &date, into: &array)
                    // The same, but for the date line (37 bytes before the final CRLF), which may tick in between.
                    #expect(written.count == array.count && written.dropLast(39) == array.dropLast(39))
                    longest = max(longest, written.count - lines.count - 8)
                }
            }
        }
        #expect(longest <= HTTP1ResponseEncoder.headRoom && longest > 150)
    }

    @Test(arguments: [0, 7, 10, 99, 1000, 123_456_789, Int.max])
    func decimalEncoding(value: Int) {
        var buffer: [UInt8] = []
        buffer.writeDecimal(value)
        #expect(String(decoding: buffer, as: UTF8.self) == String(value))
    }

    @Test func dateHeaderIsIMFFixdate() {
        #expect(
            String(decoding: DateCache.render(784_111_777), as: UTF8.self) == "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n")
        #expect(String(decoding: DateCache.render(0), as: UTF8.self) == "Date: Thu, 01 Jan 1970 00:00:00 GMT\r\n")
    }

    @Test func durationConversion() {
        #expect(Duration.milliseconds(1500).nanoseconds == 1_500_000_000)
        #expect(Duration.seconds(-1).nanoseconds == 0)
        #expect(Duration.seconds(Int64.max).nanoseconds == UInt64.max)
    }

    final class HeapItem: DeadlineScheduled {
        var deadline: UInt64 = 0
        var due: UInt64 = 0
        var heapIndex = -1
        let number: Int
        init(_ number: Int) { self.number = number }
    }

    @Test func deadlineHeapOrdersAndUpdates() {
        var heap = DeadlineHeap<HeapItem>()
        let items = (0..<20).map { HeapItem($0) }
        for (index, item) in items.enumerated() { heap.schedule(item, at: UInt64((index * 7919) % 20)) }
        heap.schedule(items[5], at: 100)
        heap.remove(items[3])
        heap.remove(items[3])  // no effect the second time
        // Stepping the clock, each fires at its due time (item 5 moved later: at 100, not at its first place).
        var fired: [UInt64] = []
        for now in UInt64(0)...200 {
            while let expired = heap.popExpired(now: now) {
                #expect(expired.due == now)
                fired.append(now)
            }
        }
        #expect(fired == fired.sorted())
        #expect(fired.count == 19)
        #expect(fired.last == 100)
        #expect(items.allSatisfy { $0.heapIndex == -1 })
    }

    /// Lazy moves (a later deadline only recorded, a cancelled one left in place) against a model of when each item
    /// is due: over random schedules, cancels and removals with the clock moving on, every item fires at the first
    /// pop at or after its due time, never before and never twice, and a cancelled or removed one not at all.
    @Test func deadlineHeapFiresEachItemWhenDueUnderRandomMoves() {
        var heap = DeadlineHeap<HeapItem>()
        let items = (0..<40).map { HeapItem($0) }
        var model: [UInt64?] = Array(repeating: nil, count: items.count)
        var seed: UInt64 = 0x2545_F491_4F6C_DD1D
        func next(_ bound: Int) -> Int {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int(truncatingIfNeeded: seed >> 33) % bound
        }
        var fired = 0
        for now in UInt64(1)...20_000 {
            for _ in 0..<next(4) {
                let index = next(items.count)
                switch next(10) {
                case 0:
                    heap.cancel(items[index])
                    model[index] = nil
                case 1:
                    heap.remove(items[index])
                    model[index] = nil
                default:
                    // Mostly later than the current deadline (a pushed-back timer), sometimes earlier or past.
                    let due = now &+ UInt64(next(60)) &- 3
                    heap.schedule(items[index], at: due)
                    model[index] = due
                }
            }
            var expected = Set(model.indices.filter { model[$0].map { $0 <= now } ?? false })
            while let expired = heap.popExpired(now: now) {
                #expect(
                    expected.remove(expired.number) != nil,
                    "item \(expired.number) fired at \(now), due \(model[expired.number].map(String.init) ?? "never")")
                model[expired.number] = nil
                fired += 1
            }
            #expect(expected.isEmpty, "due at \(now) but not fired: \(expected.sorted())")
            #expect(heap.count <= items.count)
        }
        #expect(fired > 10_000)
        // Cancelled items leave the heap when their place comes up.
        for item in items { heap.cancel(item) }
        #expect(heap.popExpired(now: .max - 1) == nil)
        #expect(heap.count == 0)
        #expect(items.allSatisfy { $0.heapIndex == -1 })
    }

    @Test func inputBufferMatchesAModelUnderRandomWritesAndConsumes() {
        var buffer = InputBuffer(capacity: 16)
        var model: [UInt8] = []
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> Int {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int(truncatingIfNeeded: seed >> 33)
        }
        var value: UInt8 = 0
        for _ in 0..<5000 {
            if next() % 3 != 0 {
                let count = next() % 5000
                _ = buffer.write(minimumSpace: max(count, 1)) { space in
                    for index in 0..<count {
                        space[index] = value
                        model.append(value)
                        value &+= 1
                    }
                    return count
                }
            } else {
                let count = model.isEmpty ? 0 : next() % (model.count + 1)
                buffer.consume(count)
                model.removeFirst(count)
            }
            #expect(buffer.readableCount == model.count)
        }
        #expect(buffer.withReadableBytes { Array($0) } == model)
    }

    @Test func inputBufferCompactsAndGrows() {
        var buffer = InputBuffer(capacity: 8)
        let written = buffer.write(minimumSpace: 4) { space in
            for index in 0..<6 { space[index] = UInt8(index) }
            return 6
        }
        #expect(written == 6)
        buffer.consume(4)
        _ = buffer.write(minimumSpace: 20) { space in
            #expect(space.count >= 20)
            for index in 0..<20 { space[index] = 100 }
            return 20
        }
        #expect(buffer.readableCount == 22)
        let bytes = buffer.withReadableBytes { Array($0) }
        #expect(Array(bytes.prefix(2)) == [4, 5])
        buffer.consume(22)
        #expect(buffer.isEmpty)
    }
}
