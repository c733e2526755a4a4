/// Something with a deadline that can sit in a ``DeadlineHeap``.
protocol DeadlineScheduled: AnyObject {
    /// Monotonic nanoseconds: the element's place in the heap's order, never later than ``due``. Maintained by the
    /// heap; meaningful only while in one.
    var deadline: UInt64 { get set }
    /// Monotonic nanoseconds: when the element is due (`.max`: never, its deadline was cancelled). Maintained by the
    /// heap; meaningful only while in one.
    var due: UInt64 { get set }
    /// Position in the heap, -1 when not in one. Maintained by the heap.
    var heapIndex: Int { get set }
}

/// An indexed binary min-heap of per-connection deadlines, lazy about deadlines that move later.
///
/// Each element knows its index, so moving a deadline earlier or removing an element is O(log n), and the earliest
/// place (which bounds the `epoll_wait` timeout) is O(1). A deadline moved later, or cancelled, only records when
/// the element is due (``DeadlineScheduled/due``): the element keeps its earlier place until that place comes up in
/// ``popExpired(now:)``, which then moves it to its due time (or takes a cancelled one out). A connection's timer
/// is pushed back on every request (idle, head, none while the handler works, idle again), nearly always later:
/// this way that costs two stores instead of two reorderings, each with an array append or removal (a retain or
/// release). The loop may wake at a place that turns out not due (at most once per element per timeout): it never
/// wakes late.
struct DeadlineHeap<Element: DeadlineScheduled> {
    private var elements: [Element] = []

    /// The earliest place in the heap: no element is due before it (one may be due later: see the type's notes).
    var earliest: UInt64? { elements.first?.deadline }

    /// Number of elements in the heap, cancelled ones whose place has not come up included.
    var count: Int { elements.count }

    /// Schedules `element` at `deadline`, or moves it there if already scheduled (a later deadline is only recorded).
    mutating func schedule(_ element: Element, at deadline: UInt64) {
        element.due = deadline
        if element.heapIndex >= 0 {
            if deadline < element.deadline {
                element.deadline = deadline
                siftUp(element.heapIndex)
            }
        } else {
            element.deadline = deadline
            element.heapIndex = elements.count
            elements.append(element)
            siftUp(elements.count - 1)
        }
    }

    /// Cancels `element`'s deadline: it stays in the heap (held) until its place comes up, then leaves it. For a
    /// timer off for a while (the element is scheduled again soon); an element going away is ``remove(_:)``d.
    mutating func cancel(_ element: Element) {
        if element.heapIndex >= 0 { element.due = .max }
    }

    /// The next element due at `now`, taken out of the heap, or nil when none is. Elements whose place came up but
    /// that are due later are moved to their due time on the way, cancelled ones taken out.
    mutating func popExpired(now: UInt64) -> Element? {
        while let first = elements.first, first.deadline <= now {
            if first.due <= now {
                remove(first)
                return first
            }
            if first.due == .max {
                remove(first)
            } else {
                first.deadline = first.due
                siftDown(0)
            }
        }
        return nil
    }

    /// Takes `element` out of the heap at once; no effect if it is not in it.
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
