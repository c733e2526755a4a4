import MLOpsExporter
import Testing

@Suite struct ContentNegotiationTests {
    static let prometheus242 =
        "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
        + "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
    static let prometheus242NativeHistograms =
        "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,"
        + "application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,"
        + "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
    static let prometheus3 =
        "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
        + "application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,"
        + "text/plain;version=0.0.4;q=0.3,*/*;q=0.2"

    // MARK: Accept

    @Test(arguments: [
        (prometheus242, ExpositionFormat.openMetrics),
        (prometheus242NativeHistograms, .openMetrics),
        (prometheus3, .openMetrics),
        ("*/*", .text),  // curl
        ("text/plain", .text),
        ("text/plain;version=0.0.4", .text),
        ("text/plain; version=0.0.4; charset=utf-8", .text),
        ("application/openmetrics-text", .openMetrics),
        ("application/openmetrics-text; version=1.0.0; charset=utf-8", .openMetrics),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", .text),  // a browser
        ("application/json", .text),  // nothing acceptable: text, as client_golang
        ("text/plain;version=1.0.0", .text),
        ("text/*", .text),
        ("application/*", .openMetrics),
    ])
    func realHeaders(accept: String, expected: ExpositionFormat) {
        #expect(ContentNegotiation.format(accept: accept) == expected, "\(accept)")
    }

    @Test func absentOrEmptyHeaderMeansText() {
        #expect(ContentNegotiation.format(accept: nil) == .text)
        #expect(ContentNegotiation.format(accept: "") == .text)
        #expect(ContentNegotiation.format(acceptLines: []) == .text)
    }

    /// The OpenMetrics draft 0.0.1 weighs as OpenMetrics (served 1.0.0), as client_golang's
    /// `NegotiateIncludingOpenMetrics` takes it. Before, it counted only when nothing else matched: Prometheus' own
    /// header of before 1.0.0, and `scrape_protocols: [OpenMetricsText0.0.1]`, got text.
    @Test func theOpenMetricsDraftWeighsAsOpenMetrics() {
        #expect(ContentNegotiation.format(accept: "application/openmetrics-text; version=0.0.1") == .openMetrics)
        #expect(
            ContentNegotiation.format(
                accept: "application/openmetrics-text; version=0.0.1,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
                == .openMetrics)
        #expect(
            ContentNegotiation.format(accept: "application/openmetrics-text;version=0.0.1;q=0.5,*/*;q=0.4")
                == .openMetrics)
        #expect(
            ContentNegotiation.format(accept: "application/openmetrics-text;version=0.0.1;q=0.3,text/plain;q=0.5")
                == .text)
        // 1.0.0 explicitly refused: the draft does not bring it back.
        #expect(
            ContentNegotiation.format(
                accept: "application/openmetrics-text;version=1.0.0;q=0,application/openmetrics-text;version=0.0.1")
                == .text)
        #expect(ContentNegotiation.format(accept: "application/openmetrics-text;version=0.0.1;q=0") == .text)
        // A range of weight 1 does not bring back a format a more specific range refused (it did: every weight 0,
        // and 0 was the best).
        #expect(
            ContentNegotiation.format(
                accept: "application/openmetrics-text;q=1, application/openmetrics-text;version=1.0.0;q=0") == .text)
        #expect(
            ContentNegotiation.format(accept: "application/*, application/openmetrics-text;version=1.0.0;q=0") == .text)
        // The draft turned down does not turn down 1.0.0, which an unversioned range accepts (RFC 9110 §12.5.1: 1.0.0
        // does not match the draft's range; it was text, the draft's q=0 taken for 1.0.0's, a scrape-path probe).
        #expect(
            ContentNegotiation.format(
                accept: "application/openmetrics-text;version=0.0.1;q=0, application/openmetrics-text")
                == .openMetrics)
        #expect(
            ContentNegotiation.format(
                accept:
                    "application/openmetrics-text;version=0.0.1;q=0.1, application/openmetrics-text;q=0.9, text/plain;q=0.5"
            ) == .openMetrics)
        // Nor the other way round: OpenMetrics refused in general, the draft alone does not bring 1.0.0 back.
        #expect(
            ContentNegotiation.format(
                accept: "application/openmetrics-text;q=0, application/openmetrics-text;version=0.0.1")
                == .text)
        // A type wildcard matches 1.0.0 where the draft's range does not: it decides, the draft only above `*/*`.
        #expect(
            ContentNegotiation.format(accept: "application/openmetrics-text;version=0.0.1;q=0, application/*")
                == .openMetrics)
        #expect(
            ContentNegotiation.format(accept: "application/*;q=0, application/openmetrics-text;version=0.0.1") == .text)
        #expect(
            ContentNegotiation.format(accept: "*/*;q=0, application/openmetrics-text;version=0.0.1") == .openMetrics)
    }

    @Test func tiesFollowSpecificityThenHeaderOrder() {
        #expect(
            ContentNegotiation.format(accept: "text/plain;version=0.0.4, application/openmetrics-text;version=1.0.0")
                == .text)
        #expect(
            ContentNegotiation.format(accept: "application/openmetrics-text;version=1.0.0, text/plain;version=0.0.4")
                == .openMetrics)
        #expect(
            ContentNegotiation.format(accept: "application/openmetrics-text;q=0.5, text/plain;q=0.5") == .openMetrics)
        #expect(ContentNegotiation.format(accept: "text/plain;q=0.5, application/openmetrics-text;q=0.5") == .text)
        // A specific type beats a wildcard of the same weight, whatever the order.
        #expect(ContentNegotiation.format(accept: "*/*, application/openmetrics-text") == .openMetrics)
        #expect(ContentNegotiation.format(accept: "application/*, text/plain") == .text)
        // A higher weight beats order and specificity.
        #expect(
            ContentNegotiation.format(accept: "text/plain;q=0.4, application/openmetrics-text;q=0.5") == .openMetrics)
        #expect(ContentNegotiation.format(accept: "application/openmetrics-text;q=0.1, */*;q=0.2") == .text)
        // A format weighs what its most specific range says, not a wildcard's weight (RFC 9110 §12.5.1).
        #expect(
            ContentNegotiation.format(
                accept: "application/*;q=0.9, application/openmetrics-text;q=0.1, text/plain;q=0.5") == .text)
        #expect(
            ContentNegotiation.format(accept: "text/*;q=0.9, text/plain;q=0.1, application/openmetrics-text;q=0.5")
                == .openMetrics)
        #expect(ContentNegotiation.format(accept: "*/*;q=0.5, text/plain;version=0.0.4;q=0.1") == .openMetrics)
    }

    @Test func zeroWeightExcludes() {
        #expect(ContentNegotiation.format(accept: "application/openmetrics-text;q=0, text/plain;q=0.1") == .text)
        #expect(ContentNegotiation.format(accept: "application/openmetrics-text;version=1.0.0;q=0") == .text)
        #expect(ContentNegotiation.format(accept: "application/openmetrics-text;q=0, */*") == .text)
        // Text refused specifically: the wildcard yields OpenMetrics.
        #expect(ContentNegotiation.format(accept: "*/*, text/plain;q=0") == .openMetrics)
        #expect(ContentNegotiation.format(accept: "*/*, text/plain;version=0.0.4;q=0") == .openMetrics)
        // Everything refused: the default, text.
        #expect(ContentNegotiation.format(accept: "text/plain;version=0.0.4;q=0, text/*") == .text)
        #expect(ContentNegotiation.format(accept: "*/*;q=0") == .text)
    }

    @Test func caseAndWhitespaceAreIgnored() {
        #expect(
            ContentNegotiation.format(
                accept: "  APPLICATION/OpenMetrics-Text ; Version=1.0.0 ; Q=0.9 , text/plain;q=0.1 ")
                == .openMetrics)
        #expect(ContentNegotiation.format(accept: "Text/Plain;q=1.000, application/openmetrics-text;q=0.999") == .text)
        #expect(ContentNegotiation.format(accept: "application/openmetrics-text;version=\"1.0.0\"") == .openMetrics)
        #expect(
            ContentNegotiation.format(acceptLines: ["application/json", "application/openmetrics-text"]) == .openMetrics
        )
    }

    @Test func malformedElementsAreSkipped() {
        for garbage in [
            "garbage", ";;;", ",,,", "/", "text/", "/plain", "text/plain/extra", "*/plain", "text/pl ain",
            "text/plain;q=2", "text/plain;q=0.5000", "text/plain;q=abc", "text/plain;q=", "text/plain;q=.5",
            "text/plain;q=1.5", "text/plain;q=-0", "text/plain;version",
            "text/plain;=1", "\u{1F600}/\u{1F600}", "application/openmetrics-text;version=1.0.0;q=1.001",
        ] {
            #expect(ContentNegotiation.parseAccept(garbage).isEmpty, "\(garbage)")
            // A malformed element does not spoil the rest of the header.
            #expect(
                ContentNegotiation.format(accept: garbage + ",application/openmetrics-text;q=0.2") == .openMetrics,
                "\(garbage)")
        }
        // An unterminated quoted string runs to the end of the header: all of it is one malformed element.
        #expect(ContentNegotiation.parseAccept("text/plain;version=\"0.0.4, application/openmetrics-text").isEmpty)
        // A comma inside a quoted parameter value does not split the element.
        #expect(
            ContentNegotiation.format(accept: "text/plain;foo=\"a,b\\\"c\", application/openmetrics-text;q=0.5")
                == .text)
    }

    @Test func parseAcceptKeepsOrderParametersAndWeights() {
        let ranges = ContentNegotiation.parseAccept(Self.prometheus3)
        #expect(ranges.count == 5)
        #expect(ranges[0].type == "application" && ranges[0].subtype == "openmetrics-text")
        #expect(ranges[0].parameters == ["version": "1.0.0", "escaping": "allow-utf-8"])
        #expect(ranges[0].quality == 0.6)
        #expect(ranges[4] == MediaRange(type: "*", subtype: "*", quality: 0.2))
        #expect(ranges[4].specificity == 0)
        #expect(ContentNegotiation.parseAccept("*; q=.2, */*;q=0.2").count == 1)  // old Java: bad q skipped
        #expect(ContentNegotiation.parseAccept("*;q=0.2") == [MediaRange(type: "*", subtype: "*", quality: 0.2)])
        #expect(ContentNegotiation.parseAccept("text/plain;;charset=utf-8;")[0].parameters == ["charset": "utf-8"])
        #expect(
            ContentNegotiation.parseAccept("text/plain;q=0.5;version=0.0.4")
                == [MediaRange(type: "text", subtype: "plain", parameters: ["version": "0.0.4"], quality: 0.5)])
        #expect(
            MediaRange(type: "Text", subtype: "Plain", parameters: ["Version": "0.0.4"], quality: 0.5).description
                == "text/plain;version=0.0.4;q=0.5")
    }

    // MARK: Accept-Encoding

    @Test(arguments: [
        ("gzip", true),
        ("GZIP", true),
        ("x-gzip", true),
        ("gzip, deflate", true),
        ("deflate, gzip, br, zstd", true),  // curl --compressed
        ("*", true),
        ("gzip;q=0.5", true),
        (" gzip ; q=0.001 ", true),
        ("gzip;q=1, identity;q=0.5", true),
        ("gzip;q=0.5, identity;q=0.5", true),
        ("", false),
        ("identity", false),
        ("br", false),
        ("deflate", false),
        ("gzip;q=0", false),
        ("x-gzip;q=0", false),
        ("*;q=0", false),
        ("gzip;q=0, *", false),  // an explicit gzip element wins over the wildcard
        ("gzip;q=0.5, identity", false),  // identity explicitly preferred
        ("*;q=0.5, identity", false),
        ("gzip;q=abc", false),  // malformed weight: element skipped
        ("gzip;q=abc, x-gzip", true),
        ("gzip;q=0, x-gzip;q=0.3", true),
        ("gzip/1", false),
    ])
    func acceptEncoding(header: String, expected: Bool) {
        #expect(ContentNegotiation.acceptsGzip(header) == expected, "\(header)")
    }

    @Test func absentAcceptEncodingMeansNoGzip() {
        #expect(!ContentNegotiation.acceptsGzip(nil))
        #expect(!ContentNegotiation.acceptsGzip(acceptEncodingLines: []))
        #expect(ContentNegotiation.acceptsGzip(acceptEncodingLines: ["br", "gzip"]))
    }

    // MARK: X-Prometheus-Scrape-Timeout-Seconds

    @Test func scrapeTimeout() {
        #expect(ContentNegotiation.scrapeTimeout("10") == .seconds(10))
        #expect(ContentNegotiation.scrapeTimeout("0.5") == .milliseconds(500))
        #expect(ContentNegotiation.scrapeTimeout(" 2.5 ") == .milliseconds(2500))
        #expect(ContentNegotiation.scrapeTimeout("1e1") == .seconds(10))
        for bad in [nil, "", " ", "0", "-1", "-0.5", "abc", "10s", "inf", "+inf", "nan", "1e300", "1,5"] {
            #expect(ContentNegotiation.scrapeTimeout(bad) == nil, "\(String(describing: bad))")
        }
    }

    @Test func scrapeNegotiationFromHeaderLines() {
        let fromPrometheus = ScrapeNegotiation(
            acceptLines: [Self.prometheus242], acceptEncodingLines: ["gzip"], scrapeTimeout: "10")
        #expect(fromPrometheus.format == .openMetrics)
        #expect(fromPrometheus.gzip)
        #expect(fromPrometheus.scrapeTimeout == .seconds(10))
        let bare = ScrapeNegotiation(acceptLines: [], acceptEncodingLines: [], scrapeTimeout: nil)
        #expect(bare == ScrapeNegotiation(acceptLines: ["*/*"], acceptEncodingLines: ["identity"], scrapeTimeout: "x"))
        #expect(bare.format == .text && !bare.gzip && bare.scrapeTimeout == nil)
    }
}
