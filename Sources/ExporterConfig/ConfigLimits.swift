/// Bounds on what a configuration file (the models' or the web one) may hold, so that a hostile or broken
/// file is rejected with a located error (`file:line:column: field: message`) instead of taking the
/// process's memory or time, at start, on `check-config` and on every reload. Each is far above what a real
/// configuration needs.
public enum ConfigLimits {
    /// Most bytes a configuration file may have: 2 MiB. The YAML parser holds the whole document as a tree
    /// before anything is checked, some 150 bytes per value (a 2 MiB file of one-character values peaks near
    /// 160 MB while it is parsed), so this bounds its memory; a larger file is refused, and no more of it read
    /// (`file: larger than 2097152 bytes, ...`).
    public static let maxFileBytes = 2 << 20
    /// Largest `token_file` read (a bearer token is a few dozen bytes).
    public static let maxTokenFileBytes = 64 << 10

    /// Most values (scalars, lists and mappings, keys included) a document may have once every YAML alias
    /// is expanded: 1,000,000. An alias is a second reference to its anchor's node, so nested aliases
    /// (a "billion laughs") stay small in the parsed tree and grow exponentially when read; the loader
    /// measures the expansion first, without expanding, and refuses the document at the first list or
    /// mapping that passes the limit.
    public static let maxExpandedValues = 1_000_000

    /// Most bytes of scalar text a document may have once every YAML alias is expanded: 16 MiB (an alias of
    /// a long string repeated many times stays within ``maxExpandedValues``).
    public static let maxExpandedBytes = 16 << 20

    /// Longest chain of YAML aliases (an alias of an anchored node that holds an alias, and so on): 8.
    public static let maxAliasDepth = 8

    /// Most items in one list of the configuration (models, versions, classes, features, categorical values,
    /// sensitive attributes, groups, collectors, latency buckets, SLOs, and the web configuration's lists):
    /// 10,000. Every label value listed becomes series, so a real list stays far below.
    public static let maxListItems = 10_000

    /// Longest item of a list of label values (versions, classes, categorical values, groups, LLM served names):
    /// 256 bytes of UTF-8. Each becomes a label value of its series, some of them kept once per bucket or bin: a
    /// 5 KiB version with the quality collector's `score_bins: 100000` took 1.7 GB to check (names, of models,
    /// features and attributes, are 128 characters at most).
    public static let maxLabelValueBytes = 256

    /// Longest categorical value listed (`values:`): 1,024 bytes of UTF-8, what `profile` learns at most (a category of
    /// a dataset, a product's name, is often longer than a version; one learned could not be listed).
    public static let maxCategoryBytes = 1024

    /// Most memory the models' built-in state may take, estimated from the configuration before anything is built
    /// (``ModelConfiguration/estimatedStateBytes``: pending predictions and drift windows): 4 GiB. A valid file could
    /// otherwise ask for more than the machine has (`max_pending: 100000000` is 12 GB), and building it, at start,
    /// on `check-config` or on a reload, took the process down; the file is refused at the model that passes the
    /// limit, naming its estimate.
    public static let maxEstimatedStateBytes = 4 << 30
}
