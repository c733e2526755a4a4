/// Constant facts about the target as labels on a sample of value 1 (`build_info{version="1.2"} 1`).
///
/// OpenMetrics type `info`, sample `<name>_info`; in text 0.0.4 a gauge named `<name>_info`. An info
/// series has no operations: its labels are its content. OpenMetrics says they should not change during
/// the process' life; to change them, remove the series and create another.
public final class Info: FamilySeries {
    /// Internal per-series data; not part of the API.
    public let _meta: SeriesMetaBox

    init(meta: SeriesMeta) { _meta = SeriesMetaBox(meta: meta) }

    func render(into out: inout ByteWriter, names: FamilyNames, context: RenderContext) {
        out.append(contentsOf: _meta.meta.mainPrefix)
        out.append(UInt8(ascii: "1"), UInt8(ascii: "\n"))
    }
}
