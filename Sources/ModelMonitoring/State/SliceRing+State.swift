extension SliceRing {
    /// Writes the window: its shape, then each block's epoch and slots (a block never used as a flag byte 0).
    /// Reads run beside recording: each slot is read atomically, the window as a whole is not a snapshot (as for a
    /// scrape).
    public func save(into w: inout StateWriter) {
        w.count(sliceCount)
        w.count(width)
        w.double(sliceSeconds)
        for block in 0..<sliceCount {
            let epoch = Int(Int64(bitPattern: blockEpochs.load(block)))
            if epoch == Int.min {
                w.byte(0)
                continue
            }
            w.byte(1)
            w.signed(Int64(epoch))
            w.slots(data, start: block * width, count: width)
        }
    }

    /// Reads a window written by ``save(into:)`` into this ring, which nothing records into yet. Slices that lie
    /// outside the window ending at `now` are dropped (as a rotation would have done). Throws
    /// when the saved shape differs from this ring's (another window configuration).
    public func restore(from r: inout StateReader, now: Double) throws(StateError) {
        let count = try r.count(max: 1 << 20)
        let savedWidth = try r.count(max: Int(Int32.max))
        let seconds = try r.double()
        guard count == sliceCount, savedWidth == width, seconds == sliceSeconds else {
            throw .mismatch(
                "window of \(count) slices of \(seconds) s × \(savedWidth) slots saved, \(sliceCount) × \(sliceSeconds) s × \(width) configured"
            )
        }
        let nowEpoch = epoch(now)
        var newestKept = Int.min
        for block in 0..<sliceCount {
            let used = try r.byte()
            guard used <= 1 else { throw .malformed("block flag \(used)") }
            if used == 0 {
                blockEpochs.store(block, UInt64(bitPattern: Int64(Int.min)))
                for i in 0..<width { data.store(block * width + i, 0) }
                continue
            }
            let e = try r.signed()
            guard e > Int64(Int.min / 2) && e < Int64(Int.max / 2), self.block(ofEpoch: Int(e)) == block else {
                throw .malformed("epoch \(e) in block \(block)")
            }
            try r.slots(into: data, start: block * width, count: width)
            if Int(e) <= nowEpoch - sliceCount {
                blockEpochs.store(block, UInt64(bitPattern: Int64(Int.min)))
                for i in 0..<width { data.store(block * width + i, 0) }
            } else {
                blockEpochs.store(block, UInt64(bitPattern: e))
                newestKept = Swift.max(newestKept, Int(e))
            }
        }
        rotation.withLock { _ in
            newest.store(newestKept, ordering: .releasing)
            newestBase.store(newestKept == Int.min ? -1 : self.block(ofEpoch: newestKept) * width, ordering: .relaxed)
            lateWrites.add(1, ordering: .releasing)
            closed.withLock { $0 = nil }
        }
    }
}
