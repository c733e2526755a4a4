import HTTPServer

extension Exporter {
    /// What is wrong with `addresses` as ``Configuration/listenAddresses``, nil when they can be bound: each parses
    /// (``ListenAddress``: `host:port`, `[v6]:port`, `:port`) and none is given twice or overlaps another
    /// (``ListenAddress/overlaps(_:)``: `:9747` and `127.0.0.1:9747`) unless its port is 0 (each picks a free port of
    /// its own): the second bind failed with "address already in use", the process's own.
    public static func listenAddressesProblem(_ addresses: [String]) -> String? {
        var seen: [(text: String, address: ListenAddress)] = []
        for text in addresses {
            let address: ListenAddress
            do { address = try ListenAddress(text) } catch { return error.message }
            if let earlier = seen.first(where: { $0.address.overlaps(address) }) {
                if earlier.address == address {
                    return "\"\(text)\" is given twice (the same address as an earlier one); give it once"
                }
                return
                    "\"\(text)\" overlaps \"\(earlier.text)\" (the same port, and one of them listens on every address of the other); give one of them another port"
            }
            seen.append((text, address))
        }
        return nil
    }

    /// The proxy's listen addresses (`proxy.listen`) overlap each other or the exporter's own
    /// (``Configuration/listenAddresses``): one of the binds would fail with "address already in use".
    public struct OverlappingListenAddresses: Error, Sendable, CustomStringConvertible {
        /// Which two, and what to do.
        public let description: String
    }

    /// Throws ``OverlappingListenAddresses`` when two of `proxy` (valid: the configuration was validated), or one of
    /// them and one of `web`, cannot both be bound (``ListenAddress/overlaps(_:)``): the bind failed with "address
    /// already in use" and did not say it was the exporter's own port.
    static func checkProxyListenAddresses(_ proxy: [String], web: [String]) throws(OverlappingListenAddresses) {
        let own = web.compactMap { text in (try? ListenAddress(text)).map { (text, $0) } }
        var earlier: [(String, ListenAddress)] = []
        for text in proxy {
            guard let address = try? ListenAddress(text) else { continue }
            if let (other, _) = own.first(where: { $0.1.overlaps(address) }) {
                throw OverlappingListenAddresses(
                    description:
                        "proxy.listen \"\(text)\" overlaps --web.listen-address \"\(other)\" (the same port): the proxied API and /metrics need ports of their own; give the proxy another (its default is :9748)"
                )
            }
            if let (other, _) = earlier.first(where: { $0.1.overlaps(address) }) {
                throw OverlappingListenAddresses(
                    description:
                        "proxy.listen \"\(text)\" overlaps \"\(other)\" (the same port, and one of them listens on every address of the other, or both on the same); give one of them another port"
                )
            }
            earlier.append((text, address))
        }
    }
}
