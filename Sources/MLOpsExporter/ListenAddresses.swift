import HTTPServer

extension Exporter {
    /// What is wrong with `addresses` as ``Configuration/listenAddresses``, nil when they can be bound: each parses
    /// (``ListenAddress``: `host:port`, `[v6]:port`, `:port`) and none is given twice (the second bind failed with
    /// "address already in use", the process's own) unless its port is 0 (each picks a free port of its own).
    public static func listenAddressesProblem(_ addresses: [String]) -> String? {
        var seen: Set<ListenAddress> = []
        for text in addresses {
            let address: ListenAddress
            do { address = try ListenAddress(text) } catch { return error.message }
            if address.port != 0, !seen.insert(address).inserted {
                return "\"\(text)\" is given twice (the same address as an earlier one); give it once"
            }
        }
        return nil
    }
}
