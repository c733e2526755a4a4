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
    /// outside the window ending at `now` are dropped (as a rotation would have done). A window saved after `now`
    /// (by a clock that ran ahead, or the clock set back since) is moved back whole, its slices' order and spacing
    /// kept: by the difference between the reader's ``StateReader/savedAt`` and `now` when known (the same for every
    /// window of a checkpoint, so that a model's drift and quality windows stay in step), and at least so far that its
    /// newest slice is now's. Left in the future, every event until the clock caught up was older than the window's
    /// newest slice by more than the window, late, and the window stayed as restored (as pending predictions saved
    /// with a future arrival are taken as arriving now). Throws when the saved shape differs from this ring's
    /// (another window configuration).
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
        // Epochs as saved; the cut-off applied once the newest is known (a future window moves back first).
        var savedEpochs = [Int](repeating: Int.min, count: sliceCount)
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
            savedEpochs[block] = Int(e)
        }
        let newestSaved = savedEpochs.max() ?? Int.min
        var shift = 0
        if let savedAt = r.savedAt, savedAt > now, savedAt < 1e15 { shift = epoch(savedAt) - nowEpoch }
        if newestSaved != Int.min && newestSaved - shift > nowEpoch { shift = newestSaved - nowEpoch }
        if shift > 0 {
            // Every slice `shift` epochs back: block b (epoch e) to the block of e − shift, b − shift mod the count.
            rotateBlocks(left: shift % sliceCount, &savedEpochs)
            for block in 0..<sliceCount where savedEpochs[block] != Int.min { savedEpochs[block] -= shift }
        }
        for block in 0..<sliceCount {
            let e = savedEpochs[block]
            if e == Int.min || e <= nowEpoch - sliceCount {
                blockEpochs.store(block, UInt64(bitPattern: Int64(Int.min)))
                for i in 0..<width { data.store(block * width + i, 0) }
            } else {
                blockEpochs.store(block, UInt64(bitPattern: Int64(e)))
                newestKept = Swift.max(newestKept, e)
            }
        }
        rotation.withLock { _ in
            newest.store(newestKept, ordering: .releasing)
            newestBase.store(newestKept == Int.min ? -1 : self.block(ofEpoch: newestKept) * width, ordering: .relaxed)
            lateWrites.add(1, ordering: .releasing)
            closed.withLock { $0 = nil }
        }
    }

    /// Moves the content of block `b` to block `(b − k) mod sliceCount`, for every block, with `epochs` (one per
    /// block): a left rotation by three reversals, in place (a ring is as large as the window's memory).
    private func rotateBlocks(left k: Int, _ epochs: inout [Int]) {
        guard k > 0 else { return }
        reverseBlocks(0, k, &epochs)
        reverseBlocks(k, sliceCount, &epochs)
        reverseBlocks(0, sliceCount, &epochs)
    }

    /// Reverses the order of blocks `from..<to` (slots and `epochs`).
    private func reverseBlocks(_ from: Int, _ to: Int, _ epochs: inout [Int]) {
        var i = from
        var j = to - 1
        while i < j {
            epochs.swapAt(i, j)
            for slot in 0..<width {
                let a = data.load(i * width + slot)
                data.store(i * width + slot, data.load(j * width + slot))
                data.store(j * width + slot, a)
            }
            i += 1
            j -= 1
        }
    }
}
