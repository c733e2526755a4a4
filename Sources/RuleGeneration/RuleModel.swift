/// A Prometheus rule file as values: groups of recording and alerting rules, in output order.
public struct RuleFile: Sendable, Equatable {
    /// The groups, in output order; names are unique.
    public var groups: [RuleGroup]

    /// Creates a rule file.
    public init(groups: [RuleGroup]) { self.groups = groups }

    /// Every rule of every group, in output order.
    public var rules: [Rule] { groups.flatMap(\.rules) }
}

/// A rule group: its rules are evaluated in order, so a rule may use the ones recorded before it.
public struct RuleGroup: Sendable, Equatable {
    /// Group name, unique in the file.
    public var name: String
    /// The rules, in evaluation order.
    public var rules: [Rule]

    /// Creates a group.
    public init(name: String, rules: [Rule]) {
        self.name = name
        self.rules = rules
    }
}

/// One recording or alerting rule.
public struct Rule: Sendable, Equatable {
    /// What the rule produces.
    public enum Kind: Sendable, Equatable {
        /// A recording rule writing the named series.
        case record(String)
        /// An alerting rule with this alert name.
        case alert(String)
    }

    /// Recording or alerting, with the name.
    public var kind: Kind
    /// The PromQL expression.
    public var expr: String
    /// Alerts: how long the condition must hold before firing (`nil`: at once).
    public var duration: String?
    /// Labels added to the results, in output order.
    public var labels: [(String, String)]
    /// Alerts: annotations, in output order.
    public var annotations: [(String, String)]

    /// Creates a rule.
    public init(
        _ kind: Kind, expr: String, duration: String? = nil, labels: [(String, String)] = [],
        annotations: [(String, String)] = []
    ) {
        self.kind = kind
        self.expr = expr
        self.duration = duration
        self.labels = labels
        self.annotations = annotations
    }

    /// The recorded series' or the alert's name.
    public var name: String {
        switch kind {
        case .record(let n), .alert(let n): n
        }
    }

    /// The value of label `key`, if set.
    public func label(_ key: String) -> String? { labels.first { $0.0 == key }?.1 }

    /// The value of annotation `key`, if set.
    public func annotation(_ key: String) -> String? { annotations.first { $0.0 == key }?.1 }

    /// Compares kind, expression, duration, labels and annotations.
    public static func == (a: Rule, b: Rule) -> Bool {
        a.kind == b.kind && a.expr == b.expr && a.duration == b.duration
            && a.labels.elementsEqual(b.labels, by: ==) && a.annotations.elementsEqual(b.annotations, by: ==)
    }
}

/// One multiwindow burn-rate alert of the SRE Workbook (chapter 5, table 5-8), as Sloth scales it to a
/// period: it fires when the error ratio over both `long` and `short` exceeds `factor` × the error budget,
/// that is when `budgetConsumed` of the period's budget would be spent within `long`.
public struct BurnRateWindow: Sendable, Equatable {
    /// `page` or `ticket`.
    public var severity: String
    /// The long window (`1h`, `6h`, `1d`, `3d`).
    public var long: String
    /// The short window (`5m`, `30m`, `2h`, `6h`): a twelfth of the long one, so the alert stops soon
    /// after the problem does.
    public var short: String
    /// Long window in hours.
    public var longHours: Int
    /// Share of the period's budget spent within `long` at the threshold (0.02, 0.05, 0.1, 0.1).
    public var budgetConsumed: Double
    /// Burn-rate threshold: `budgetConsumed` × period hours / long hours (30d: 14.4, 6, 3, 1;
    /// 28d: 13.44, 5.6, 2.8, 0.9333).
    public var factor: Double

    /// The four windows for `periodDays`: page 5m/1h (2 %), page 30m/6h (5 %), ticket 2h/1d (10 %),
    /// ticket 6h/3d (10 %), as Sloth's `google-30d` / `google-28d` windows.
    public static func windows(periodDays: Int) -> [BurnRateWindow] {
        [
            ("page", "1h", "5m", 1, 2), ("page", "6h", "30m", 6, 5), ("ticket", "1d", "2h", 24, 10),
            ("ticket", "3d", "6h", 72, 10),
        ].map { severity, long, short, hours, percent in
            BurnRateWindow(
                severity: severity, long: long, short: short, longHours: hours,
                budgetConsumed: Double(percent) / 100,
                factor: PromQL.rounded(Double(percent * periodDays * 24) / Double(hours * 100)))
        }
    }
}
