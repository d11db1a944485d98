/// A `WWW-Authenticate` challenge: its scheme (lowercased) and parameters
/// (`realm`, `service`, `scope`, …), quoted values unquoted.
struct AuthChallenge: Equatable {
    let scheme: String
    let parameters: [String: String]

    /// Reads the first challenge of a header value; nil when it has no scheme.
    static func parse(_ header: String) -> AuthChallenge? {
        var characters = Substring(header).drop { $0 == " " }
        let scheme = characters.prefix { $0 != " " && $0 != "," }
        guard !scheme.isEmpty else { return nil }
        characters = characters.dropFirst(scheme.count)
        var parameters: [String: String] = [:]
        while true {
            characters = characters.drop { $0 == " " || $0 == "," }
            let key = characters.prefix { $0 != "=" && $0 != "," && $0 != " " }
            guard !key.isEmpty else { break }
            characters = characters.dropFirst(key.count)
            guard characters.first == "=" else { break }  // another scheme's token: the first challenge ends
            characters = characters.dropFirst()
            var value = ""
            if characters.first == "\"" {
                characters = characters.dropFirst()
                var escaped = false
                while let character = characters.first {
                    characters = characters.dropFirst()
                    if escaped { value.append(character); escaped = false; continue }
                    if character == "\\" { escaped = true; continue }
                    if character == "\"" { break }
                    value.append(character)
                }
            } else {
                let token = characters.prefix { $0 != "," && $0 != " " }
                value = String(token)
                characters = characters.dropFirst(token.count)
            }
            parameters[key.lowercased()] = value
        }
        return AuthChallenge(scheme: scheme.lowercased(), parameters: parameters)
    }
}
