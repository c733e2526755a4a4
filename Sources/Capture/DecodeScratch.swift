import Ingestion
import Synchronization

/// What a decoder's exchange is decoded in: its rows and the event delivered, kept for the next exchange so that
/// their arrays are reused (written in place when of the same size: see ``Rows/reset(count:)``) and the event is not
/// built again (an exchange of one row then allocates nothing, and frees nothing element by element).
struct Workspace {
    var rows: Rows
    var event: PredictionEvent
    /// The last v2 request read in full, replayed for one of the same structure.
    var shape = RequestShape()
    /// The most values (features, attributes, row infos) a workspace keeps after an exchange: a bigger exchange's
    /// arrays are freed when it ends, so that one exchange of ``CaptureDecoder/maxRows`` rows does not stay in memory
    /// (ordinary exchanges, a few rows, are far below).
    static let keptValues = 4096

    init(schema: borrowing Schema) {
        rows = Rows(schema: schema)
        event = PredictionEvent(features: [], attributeCount: 0)
    }
}

/// One ``Workspace`` a decoder lends to its exchanges, one at a time.
///
/// Lock-free: ``take()`` empties the slot by an atomic exchange, ``give(_:)`` fills it again; an exchange that finds
/// it empty (another thread has the workspace) decodes in a new one, as if there were none. What is taken is the
/// taker's alone until given back. Arrays that something else still holds (a collector keeping an event's features)
/// are not written: they are written through copy-on-write, which copies them first.
final class DecodeScratch: Sendable {
    /// The workspace's holder, at a fixed address (decoded in where it stands, not moved in and out); one per scratch,
    /// in the slot or taken.
    final class Box: @unchecked Sendable {
        // Unchecked: a box is only reached by whoever took it from the slot (one thread at a time).
        let workspace: UnsafeMutablePointer<Workspace>

        init(schema: borrowing Schema) {
            workspace = .allocate(capacity: 1)
            workspace.initialize(to: Workspace(schema: schema))
        }

        deinit {
            workspace.deinitialize(count: 1)
            workspace.deallocate()
        }
    }

    private let slot: Atomic<Unmanaged<Box>?>

    init(schema: borrowing Schema) { slot = Atomic(Unmanaged.passRetained(Box(schema: schema))) }

    deinit { slot.exchange(nil, ordering: .relaxed)?.release() }

    /// The workspace's box, nil when another exchange has it.
    @inline(__always)
    func take() -> Unmanaged<Box>? { slot.exchange(nil, ordering: .acquiring) }

    /// Returns the box ``take()`` gave.
    @inline(__always)
    func give(_ box: Unmanaged<Box>) { slot.store(box, ordering: .releasing) }
}
