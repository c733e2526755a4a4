import Yams

/// Measures a parsed YAML document as the loaders will read it, every alias expanded, without expanding
/// anything, and refuses it at the first node that passes a limit of ``ConfigLimits`` (values, bytes of
/// text, depth of aliases).
///
/// Yams resolves an alias to its anchor's node, the same value again (shared, not copied), so the parsed
/// tree stays as small as the text while reading it expands every alias. This walk visits each written node
/// once: it remembers the expanded size of each anchored node where it is written (an anchor always comes
/// before its aliases) and counts that size again wherever the node comes back. Its cost is linear in the
/// document's length.
///
/// A node holds its anchor weakly; the `Parser` that composed the tree holds them, so it must outlive the
/// walk (without the anchors, every alias would be measured as if written, in exponential time).
struct ExpansionCheck {
    /// The size of a node with its aliases expanded.
    struct Size {
        /// Values: scalars, lists and mappings.
        var values = 1
        /// Bytes of scalar text.
        var bytes = 0
        /// Longest chain of aliases inside.
        var aliasDepth = 0
        /// Whether an alias is inside.
        var aliased = false
    }

    /// One step of the field path, rendered only for an error.
    private enum Step {
        case key(String)
        case index(Int)
    }

    let file: String
    /// The expanded size of each anchored node met, by its anchor (one object per definition: an anchor
    /// may be defined again further on).
    private var anchored: [ObjectIdentifier: Size] = [:]
    private var path: [Step] = []

    init(file: String) { self.file = file }

    /// Throws the error of the first node whose expansion passes a limit.
    mutating func check(_ root: Node) throws(ConfigError) {
        _ = try measure(root)
    }

    /// The expanded size of `node`.
    private mutating func measure(_ node: Node) throws(ConfigError) -> Size {
        if let alias = reference(node) { return alias }
        var size = Size()
        switch node {
        case .scalar(let scalar):
            size.bytes = scalar.string.utf8.count
        case .sequence(let sequence):
            for (index, item) in sequence.enumerated() {
                // An alias is located where its list is; a written item where it is.
                let written = reference(item) == nil
                if written { path.append(.index(index)) }
                try add(measure(item), to: &size, at: written ? item : node)
                if written { path.removeLast() }
            }
        case .mapping(let mapping):
            for (key, value) in mapping {
                // A value is located at its key, unless the key is an alias.
                let place = reference(key) == nil ? key : node
                try add(measure(key), to: &size, at: node)
                path.append(.key(key.string ?? "?"))
                try add(measure(value), to: &size, at: place)
                path.removeLast()
            }
        case .alias:
            break
        }
        if let anchor = node.anchor { anchored[ObjectIdentifier(anchor)] = size }
        return size
    }

    /// The expanded size of `node` if the walk has met it before: it is an alias here.
    private func reference(_ node: Node) -> Size? {
        guard let anchor = node.anchor, var size = anchored[ObjectIdentifier(anchor)] else { return nil }
        size.aliasDepth += 1
        size.aliased = true
        return size
    }

    /// Adds `part` to `total`; throws, located at `place`, when the sum passes a limit.
    private func add(_ part: Size, to total: inout Size, at place: Node) throws(ConfigError) {
        total.values += part.values
        total.bytes += part.bytes
        total.aliasDepth = max(total.aliasDepth, part.aliasDepth)
        total.aliased = total.aliased || part.aliased
        let expanded = total.aliased ? " once its YAML aliases are expanded" : ""
        if total.aliasDepth > ConfigLimits.maxAliasDepth {
            throw error(at: place, "YAML aliases are nested more than \(ConfigLimits.maxAliasDepth) deep")
        }
        if total.values > ConfigLimits.maxExpandedValues {
            throw error(
                at: place,
                "more than \(ConfigLimits.maxExpandedValues) values\(expanded) (the most a configuration may have)")
        }
        if total.bytes > ConfigLimits.maxExpandedBytes {
            throw error(
                at: place,
                "more than \(ConfigLimits.maxExpandedBytes) bytes of text\(expanded) (the most a configuration may have)"
            )
        }
    }

    private func error(at node: Node, _ message: String) -> ConfigError {
        var field = ""
        for step in path {
            switch step {
            case .key(let key): field += field.isEmpty ? key : ".\(key)"
            case .index(let index): field += "[\(index)]"
            }
        }
        return ConfigError(
            file: file, line: node.mark?.line ?? 0, column: node.mark?.column ?? 0, field: field, message: message)
    }
}
