/// A configuration problem, named by its key path (`schedule.curriculum[1].std`); the path is empty
/// for problems with the file as a whole (unreadable, not YAML, not a mapping).
public struct ConfigError: Error, CustomStringConvertible, Equatable {
    public let keyPath: String
    public let message: String
    /// The file the document came from, when it came from one (set by whoever read it).
    public var file: String?

    public init(keyPath: String, message: String, file: String? = nil) {
        self.keyPath = keyPath
        self.message = message
        self.file = file
    }

    public var description: String {
        let problem = keyPath.isEmpty ? message : "\(keyPath): \(message)"
        return file.map { "\($0): \(problem)" } ?? problem
    }
}

/// A problem found while decoding, at a coding path; `NoisedConfig.parse` turns it into a ConfigError.
struct ConfigIssue: Error {
    let codingPath: [any CodingKey]
    let message: String
}

/// A string or integer key: YAML mapping keys and sequence indices alike.
struct ConfigKey: CodingKey {
    let stringValue: String
    let intValue: Int?

    init(_ name: String) {
        stringValue = name
        intValue = nil
    }

    init?(stringValue: String) { self.init(stringValue) }

    init?(intValue: Int) {
        stringValue = String(intValue)
        self.intValue = intValue
    }
}

/// `input.endpoint`, `schedule.curriculum[1].std`: names joined by dots, indices in brackets.
func dottedPath(_ codingPath: [any CodingKey]) -> String {
    var path = ""
    for key in codingPath {
        if let index = key.intValue {
            path += "[\(index)]"
        } else {
            path += path.isEmpty ? key.stringValue : ".\(key.stringValue)"
        }
    }
    return path
}

extension ConfigError {
    /// Maps whatever decoding threw onto a key path and a message.
    init(decoding error: any Error) {
        switch error {
        case let error as ConfigError:
            self = error
        case let issue as ConfigIssue:
            self.init(keyPath: dottedPath(issue.codingPath), message: issue.message)
        case let DecodingError.typeMismatch(type, context):
            self.init(keyPath: dottedPath(context.codingPath), message: "expected \(describeExpectation(type))")
        case let DecodingError.valueNotFound(type, context):
            self.init(keyPath: dottedPath(context.codingPath), message: "expected \(describeExpectation(type)), got nothing")
        case let DecodingError.keyNotFound(key, context):
            self.init(keyPath: dottedPath(context.codingPath + [key]), message: "missing")
        case let DecodingError.dataCorrupted(context):
            self.init(keyPath: dottedPath(context.codingPath), message: context.debugDescription)
        default:
            self.init(keyPath: "", message: "invalid YAML: \(error)")
        }
    }
}

/// What a value of `type` looks like in YAML, for error messages.
func describeExpectation(_ type: Any.Type) -> String {
    switch type {
    case is Bool.Type: "true or false"
    case is UInt64.Type: "an integer in 0...\(UInt64.max)"
    case is Int.Type, is Int64.Type: "an integer"
    case is Double.Type: "a number"
    case is String.Type: "a string"
    case is [KeyframeEntry].Type: "a list of keyframes"
    case is [ComponentEntry].Type: "a list of components"
    case is [Double].Type: "a list of numbers"
    case is [Int].Type: "a list of integers"
    default: "a mapping"
    }
}
