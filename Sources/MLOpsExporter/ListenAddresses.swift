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
}
