/// Something with a deadline that can sit in a ``DeadlineHeap``.
protocol DeadlineScheduled: AnyObject {
    /// Monotonic nanoseconds; meaningful only while in a heap.
    var deadline: UInt64 { get set }
    /// Position in the heap, -1 when not in one. Maintained by the heap.
    var heapIndex: Int { get set }
}

/// An indexed binary min-heap of per-connection deadlines.
///
/// Each element knows its index, so changing or removing a deadline is O(log n) with no stale
/// entries, and the earliest deadline (which bounds the `epoll_wait` timeout) is O(1). The loop never
/// polls: it sleeps exactly until the next deadline or the next I/O event.
struct DeadlineHeap<Element: DeadlineScheduled> {
    private var elements: [Element] = []

    /// The element with the earliest deadline.
    var first: Element? { elements.first }

    /// Number of scheduled elements.
    var count: Int { elements.count }

    /// Schedules `element` at `deadline`, or moves it there if already scheduled.
    mutating func schedule(_ element: Element, at deadline: UInt64) {
        if element.heapIndex >= 0 {
            let old = element.deadline
            element.deadline = deadline
            if deadline < old { siftUp(element.heapIndex) } else if deadline > old { siftDown(element.heapIndex) }
        } else {
            element.deadline = deadline
            element.heapIndex = elements.count
            elements.append(element)
            siftUp(elements.count - 1)
        }
    }

    /// Unschedules `element`; no effect if it is not scheduled.
    mutating func remove(_ element: Element) {
        let index = element.heapIndex
        guard index >= 0 else { return }
        let last = elements.count - 1
        if index != last {
            swapAt(index, last)
        }
        elements.removeLast()
        element.heapIndex = -1
        if index < elements.count {
            siftDown(index)
            siftUp(index)
        }
    }

    private mutating func swapAt(_ a: Int, _ b: Int) {
        elements.swapAt(a, b)
        elements[a].heapIndex = a
        elements[b].heapIndex = b
    }

    private mutating func siftUp(_ start: Int) {
        var index = start
        while index > 0 {
            let parent = (index - 1) / 2
            guard elements[index].deadline < elements[parent].deadline else { return }
            swapAt(index, parent)
            index = parent
        }
    }

    private mutating func siftDown(_ start: Int) {
        var index = start
        while true {
            let left = 2 * index + 1
            guard left < elements.count else { return }
            let right = left + 1
            var smallest = left
            if right < elements.count, elements[right].deadline < elements[left].deadline { smallest = right }
            guard elements[smallest].deadline < elements[index].deadline else { return }
            swapAt(index, smallest)
            index = smallest
        }
    }
}
