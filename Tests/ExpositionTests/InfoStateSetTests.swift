import Testing

@testable import Exposition

@Suite("Info")
struct InfoTests {
    @Test("an info series: value 1, labels sorted; gauge named _info in text, info in OpenMetrics")
    func render() throws {
        let registry = plainRegistry()
        try registry.info("build", help: "Build.", labels: ["version": "1.2.3", "commit": "abc"])
        #expect(
            rendered(registry, .text) == """
                # HELP build_info Build.
                # TYPE build_info gauge
                build_info{commit="abc",version="1.2.3"} 1

                """)
        #expect(
            rendered(registry, .openMetrics) == """
                # TYPE build info
                # HELP build Build.
                build_info{commit="abc",version="1.2.3"} 1
                # EOF

                """)
    }

    @Test("a name given with _info is the same family")
    func nameWithInfo() throws {
        let registry = plainRegistry()
        try registry.info("target_info", help: "", labels: ["env": "prod"])
        #expect(registry.descriptors.map(\.name) == ["target"])
        #expect(lines(rendered(registry, .openMetrics), startingWith: "target") == [#"target_info{env="prod"} 1"#])
        #expect(throws: ExpositionError.self) { try registry.info("target", help: "", labels: ["env": "prod"]) }
    }

    @Test("an info family with several series, and without labels")
    func family() throws {
        let registry = plainRegistry()
        let f = try registry.infoFamily("model", help: "", labelNames: ["name", "version"])
        _ = try f.labels("resnet", "2")
        _ = try f.labels("bert", "1")
        try registry.info("empty", help: "", labels: [:])
        #expect(
            rendered(registry, .text) == """
                # TYPE empty_info gauge
                empty_info 1
                # TYPE model_info gauge
                model_info{name="bert",version="1"} 1
                model_info{name="resnet",version="2"} 1

                """)
    }

    @Test("info families have no unit")
    func noUnit() {
        #expect {
            try MetricDescriptor(name: "build_info", type: .info, help: "", unit: "info")
        } throws: { error in
            guard case .invalidUnit(metric: "build", unit: "info", _) = error as? ExpositionError else { return false }
            return true
        }
    }

    @Test("info label names are validated")
    func invalidLabel() {
        #expect(
            throws: ExpositionError.invalidLabelName(
                metric: "build", label: "bad-name", reason: "may contain only letters, digits and underscores")
        ) {
            try plainRegistry().info("build", help: "", labels: ["bad-name": "x"])
        }
    }
}

@Suite("StateSet")
struct StateSetTests {
    @Test("enum use: setOnly turns exactly one state on; states written sorted")
    func enumUse() throws {
        let registry = plainRegistry()
        let mode = try registry.stateSet("mode", help: "Mode.", states: ["training", "serving", "idle"])
        try mode.setOnly("serving")
        #expect(
            rendered(registry, .text) == """
                # HELP mode Mode.
                # TYPE mode gauge
                mode{mode="idle"} 0
                mode{mode="serving"} 1
                mode{mode="training"} 0

                """)
        #expect(
            rendered(registry, .openMetrics) == """
                # TYPE mode stateset
                # HELP mode Mode.
                mode{mode="idle"} 0
                mode{mode="serving"} 1
                mode{mode="training"} 0
                # EOF

                """)
        try mode.setOnly("idle")
        #expect(try mode.isOn("idle"))
        #expect(try !mode.isOn("serving"))
        #expect(
            lines(rendered(registry), startingWith: "mode{") == [
                #"mode{mode="idle"} 1"#, #"mode{mode="serving"} 0"#, #"mode{mode="training"} 0"#,
            ])
    }

    @Test("set use: states independently on and off")
    func setUse() throws {
        let registry = plainRegistry()
        let flags = try registry.stateSet("features", help: "", states: ["b", "c", "a"])
        for s in ["a", "b", "c"] { #expect(try !flags.isOn(s)) }
        try flags.set("c", true)
        try flags.set("a", true)
        try flags.set("b", false)
        #expect(
            lines(rendered(registry), startingWith: "features{") == [
                #"features{features="a"} 1"#, #"features{features="b"} 0"#, #"features{features="c"} 1"#,
            ])
        try flags.set("c", false)
        #expect(try !flags.isOn("c"))
        #expect(try flags.isOn("a"))
    }

    @Test("labelled state sets write the family's labels, then the state label")
    func labelled() throws {
        let registry = plainRegistry()
        let family = try registry.stateSetFamily("health", help: "", labelNames: ["model"], states: ["ok", "bad"])
        try family.labels("m1").setOnly("bad")
        #expect(
            rendered(registry, .openMetrics) == """
                # TYPE health stateset
                health{model="m1",health="bad"} 1
                health{model="m1",health="ok"} 0
                # EOF

                """)
    }

    @Test("state names are escaped like label values")
    func escaping() throws {
        let registry = plainRegistry()
        let s = try registry.stateSet("s", help: "", states: ["a\"b", "c\\d"])
        try s.setOnly("c\\d")
        #expect(lines(rendered(registry), startingWith: "s{") == [#"s{s="a\"b"} 0"#, #"s{s="c\\d"} 1"#])
    }

    @Test("64 states are supported; the 64th bit works")
    func sixtyFour() throws {
        let states = (0..<64).map { "s\($0)" }
        let s = try plainRegistry().stateSet("many", help: "", states: states)
        try s.set("s63", true)
        #expect(try s.isOn("s63"))
        #expect(try !s.isOn("s0"))
        try s.setOnly("s0")
        #expect(try !s.isOn("s63"))
    }

    @Test(
        "invalid state lists are refused",
        arguments: [[], ["a", "a"], (0..<65).map { "s\($0)" }])
    func invalidStates(states: [String]) {
        #expect {
            try plainRegistry().stateSet("s", help: "", states: states)
        } throws: { error in
            guard case .invalidState(metric: "s", _) = error as? ExpositionError else { return false }
            return true
        }
    }

    @Test("an unknown state throws")
    func unknownState() throws {
        let s = try plainRegistry().stateSet("mode", help: "", states: ["a"])
        #expect(throws: ExpositionError.self) { try s.set("b", true) }
        #expect(throws: ExpositionError.self) { try s.setOnly("b") }
        #expect(throws: ExpositionError.self) { try s.isOn("b") }
    }

    @Test("the unknown-state error names the state set")
    func unknownStateNamesMetric() throws {
        let s = try plainRegistry().stateSet("mode", help: "", states: ["a"])
        // ExpositionError promises a message naming the metric at fault; this one has metric "".
        #expect(throws: ExpositionError.invalidState(metric: "mode", reason: "unknown state \"b\"")) {
            try s.set("b", true)
        }

    }

    @Test("state sets have no unit")
    func noUnit() {
        #expect(throws: ExpositionError.self) {
            try MetricDescriptor(name: "mode_seconds", type: .stateset, help: "", unit: "seconds")
        }
    }
}
