extension Decoder {
    /// The mapping at this decoder, rejecting any key outside `known`: a misspelt key is an error,
    /// never a silently ignored setting.
    func strictContainer(known: [String]) throws -> KeyedDecodingContainer<ConfigKey> {
        let container = try mapping(of: known)
        for key in container.allKeys where !known.contains(key.stringValue) {
            throw ConfigIssue(codingPath: codingPath + [key],
                              message: "unknown key (expected one of: \(known.joined(separator: ", ")))")
        }
        return container
    }

    /// The mapping at this decoder, without checking its keys; `keys` only phrase the error.
    func mapping(of keys: [String]) throws -> KeyedDecodingContainer<ConfigKey> {
        do {
            return try container(keyedBy: ConfigKey.self)
        } catch DecodingError.typeMismatch {
            throw ConfigIssue(codingPath: codingPath, message: "expected a mapping of \(keys.joined(separator: ", "))")
        }
    }
}

extension KeyedDecodingContainer<ConfigKey> {
    /// The value at `key`, or `defaultValue` when the key is absent; `problem` returns why a
    /// decoded value is out of range (nil when it is fine).
    func value<T: Decodable>(
        _ key: String, default defaultValue: T, problem: (T) -> String? = { _ in nil }
    ) throws -> T {
        guard contains(ConfigKey(key)) else { return defaultValue }
        let value: T = try requiredValue(key, missing: "")
        if let problem = problem(value) { throw issue(key, problem) }
        return value
    }

    /// The value at `key`, which must be present (`missing` says what is wanted).
    func requiredValue<T: Decodable>(_ key: String, missing: String) throws -> T {
        let codingKey = ConfigKey(key)
        guard contains(codingKey) else { throw issue(key, missing) }
        do {
            return try decode(T.self, forKey: codingKey)
        } catch DecodingError.typeMismatch, DecodingError.valueNotFound {
            throw issue(key, "expected \(describeExpectation(T.self)), got \(shownValue(codingKey))")
        }
    }

    /// A nested section; absent or null (every key in it commented out) gives the defaults.
    func section<T: Decodable>(_ key: String, default defaultValue: T) throws -> T {
        let codingKey = ConfigKey(key)
        guard contains(codingKey), try !decodeNil(forKey: codingKey) else { return defaultValue }
        return try decode(T.self, forKey: codingKey)
    }

    /// A string value that must be one of an enumeration's raw values.
    func choice<T: RawRepresentable & CaseIterable>(_ key: String, default defaultValue: T) throws -> T
    where T.RawValue == String {
        let name = try value(key, default: defaultValue.rawValue)
        guard let choice = T(rawValue: name) else {
            let names = T.allCases.map(\.rawValue).joined(separator: ", ")
            throw issue(key, "must be one of \(names); got '\(name)'")
        }
        return choice
    }

    func issue(_ key: String, _ message: String) -> ConfigIssue {
        ConfigIssue(codingPath: codingPath + [ConfigKey(key)], message: message)
    }

    /// The offending value as written, for error messages.
    private func shownValue(_ key: ConfigKey) -> String {
        if (try? decodeNil(forKey: key)) == true { return "null" }
        if let scalar = try? decode(String.self, forKey: key) { return "'\(scalar)'" }
        if (try? nestedUnkeyedContainer(forKey: key)) != nil { return "a list" }
        return "a mapping"
    }
}

/// Range checks shared by the sections, phrased for error messages.
func outside<T: Comparable>(_ range: ClosedRange<T>) -> (T) -> String? {
    { range.contains($0) ? nil : "must be in \(range.lowerBound)...\(range.upperBound), got \($0)" }
}

func below<T: Comparable>(_ minimum: T) -> (T) -> String? {
    { $0 >= minimum ? nil : "must be >= \(minimum), got \($0)" }
}

func emptyString(_ value: String) -> String? {
    value.isEmpty ? "must not be empty" : nil
}
