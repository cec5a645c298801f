/// The subset of JSON a safetensors header uses: objects (keys kept in order), arrays, strings and
/// non-negative integers. Everything else (negative or fractional numbers, true/false/null) is
/// refused so a malformed header never reaches the tensor checks. The acknowledged input's replies
/// (NoisedProtocol's `AckReply`) use the same subset.
package enum HeaderJSON {
    /// Keys and values in document order (parallel arrays).
    case object(keys: [String], values: [HeaderJSON])
    case array([HeaderJSON])
    case string(String)
    case integer(UInt64)

    var kindName: String {
        switch self {
        case .object: "an object"
        case .array: "an array"
        case .string: "a string"
        case .integer: "an integer"
        }
    }
}

package struct HeaderJSONError: Error {
    package let message: String
    /// Set when the error is a repeated key, with the nesting depth of its object (1 = top level).
    let duplicateKey: (key: String, depth: Int)?

    init(_ message: String, duplicateKey: (key: String, depth: Int)? = nil) {
        self.message = message
        self.duplicateKey = duplicateKey
    }
}

/// A strict recursive-descent parser over the header bytes. Depth is bounded so hostile input
/// cannot exhaust the stack.
package struct HeaderJSONParser {
    static let maxDepth = 16

    private let bytes: UnsafeRawBufferPointer
    private var position = 0
    private var depth = 0

    private init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    /// Parses one JSON value filling `bytes` apart from surrounding whitespace.
    package static func parse(_ bytes: UnsafeRawBufferPointer) throws(HeaderJSONError) -> HeaderJSON {
        var parser = HeaderJSONParser(bytes)
        parser.skipWhitespace()
        let value = try parser.parseValue()
        parser.skipWhitespace()
        guard parser.position == bytes.count else {
            throw parser.error("unexpected \(parser.describeCurrent()) after the top-level value")
        }
        return value
    }

    private func error(_ message: String) -> HeaderJSONError {
        HeaderJSONError("at header byte \(position): \(message)")
    }

    private func describeCurrent() -> String {
        guard position < bytes.count else { return "end of header" }
        let byte = bytes[position]
        if byte >= 0x21 && byte < 0x7F { return "character '\(Character(Unicode.Scalar(byte)))'" }
        return "byte 0x\(String(byte, radix: 16, uppercase: true))"
    }

    private mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    private mutating func expect(_ byte: UInt8, _ what: @autoclosure () -> String) throws(HeaderJSONError) {
        guard position < bytes.count, bytes[position] == byte else {
            throw error("expected \(what()), found \(describeCurrent())")
        }
        position += 1
    }

    private mutating func parseValue() throws(HeaderJSONError) -> HeaderJSON {
        guard position < bytes.count else { throw error("expected a value, found end of header") }
        switch bytes[position] {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return .integer(try parseInteger())
        case UInt8(ascii: "-"): throw error("negative numbers are not allowed")
        case UInt8(ascii: "t"), UInt8(ascii: "f"), UInt8(ascii: "n"):
            throw error("true, false and null are not allowed")
        default: throw error("expected a value, found \(describeCurrent())")
        }
    }

    private mutating func enterContainer() throws(HeaderJSONError) {
        depth += 1
        guard depth <= Self.maxDepth else { throw error("nesting deeper than \(Self.maxDepth)") }
        position += 1  // the opening bracket
        skipWhitespace()
    }

    private mutating func parseObject() throws(HeaderJSONError) -> HeaderJSON {
        try enterContainer()
        var keys: [String] = []
        var values: [HeaderJSON] = []
        // Objects are usually small: scan for duplicates until one grows large enough for a set.
        var seen: Set<String>?
        if position < bytes.count, bytes[position] == UInt8(ascii: "}") {
            position += 1
            depth -= 1
            return .object(keys: keys, values: values)
        }
        while true {
            guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else {
                throw error("expected a string key, found \(describeCurrent())")
            }
            let keyPosition = position
            let key = try parseString()
            let isDuplicate = seen?.contains(key) ?? keys.contains(key)
            guard !isDuplicate else {
                throw HeaderJSONError(
                    "at header byte \(keyPosition): duplicate key \"\(key)\"", duplicateKey: (key, depth))
            }
            skipWhitespace()
            try expect(UInt8(ascii: ":"), "':' after key \"\(key)\"")
            skipWhitespace()
            keys.append(key)
            if seen != nil {
                seen!.insert(key)
            } else if keys.count >= 16 {
                seen = Set(keys)
            }
            values.append(try parseValue())
            skipWhitespace()
            guard position < bytes.count else { throw error("unterminated object") }
            if bytes[position] == UInt8(ascii: "}") { break }
            try expect(UInt8(ascii: ","), "',' or '}' in object")
            skipWhitespace()
        }
        position += 1
        depth -= 1
        return .object(keys: keys, values: values)
    }

    private mutating func parseArray() throws(HeaderJSONError) -> HeaderJSON {
        try enterContainer()
        var elements: [HeaderJSON] = []
        if position < bytes.count, bytes[position] == UInt8(ascii: "]") {
            position += 1
            depth -= 1
            return .array(elements)
        }
        while true {
            elements.append(try parseValue())
            skipWhitespace()
            guard position < bytes.count else { throw error("unterminated array") }
            if bytes[position] == UInt8(ascii: "]") { break }
            try expect(UInt8(ascii: ","), "',' or ']' in array")
            skipWhitespace()
        }
        position += 1
        depth -= 1
        return .array(elements)
    }

    private mutating func parseInteger() throws(HeaderJSONError) -> UInt64 {
        let start = position
        var value: UInt64 = 0
        while position < bytes.count, case let byte = bytes[position], byte >= 0x30 && byte <= 0x39 {
            if position > start && bytes[start] == UInt8(ascii: "0") {
                throw HeaderJSONError("at header byte \(start): leading zeros are not allowed")
            }
            let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(UInt64(byte - 0x30))
            guard !overflow1 && !overflow2 else {
                throw HeaderJSONError("at header byte \(start): integer does not fit in 64 bits")
            }
            value = sum
            position += 1
        }
        if position < bytes.count,
           [UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E")].contains(bytes[position]) {
            throw HeaderJSONError("at header byte \(start): only whole numbers are allowed")
        }
        return value
    }

    private mutating func parseString() throws(HeaderJSONError) -> String {
        position += 1  // the opening quote
        let start = position
        // Fast path: no escapes, so the string is a slice of the header. Pure ASCII needs no
        // UTF-8 validation (the generic validating initializer is comparatively slow).
        var isASCII = true
        while position < bytes.count {
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") {
                let slice = UnsafeRawBufferPointer(rebasing: bytes[start..<position])
                position += 1
                return isASCII ? String(decoding: slice, as: UTF8.self) : try validatedUTF8(slice, at: start)
            }
            if byte == UInt8(ascii: "\\") { break }
            guard byte >= 0x20 else { throw error("unescaped control character in string") }
            isASCII = isASCII && byte < 0x80
            position += 1
        }
        var utf8 = Array(bytes[start..<position])
        while position < bytes.count {
            let byte = bytes[position]
            position += 1
            switch byte {
            case UInt8(ascii: "\""):
                return try validatedUTF8(utf8, at: start)
            case UInt8(ascii: "\\"):
                try parseEscape(into: &utf8)
            case 0..<0x20:
                position -= 1
                throw error("unescaped control character in string")
            default:
                utf8.append(byte)
            }
        }
        throw HeaderJSONError("at header byte \(start - 1): unterminated string")
    }

    private func validatedUTF8(_ codeUnits: some Sequence<UInt8>, at start: Int) throws(HeaderJSONError) -> String {
        guard let string = String(validating: codeUnits, as: UTF8.self) else {
            throw HeaderJSONError("at header byte \(start): string is not valid UTF-8")
        }
        return string
    }

    private mutating func parseEscape(into utf8: inout [UInt8]) throws(HeaderJSONError) {
        guard position < bytes.count else { throw error("unterminated escape") }
        let byte = bytes[position]
        position += 1
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): utf8.append(byte)
        case UInt8(ascii: "b"): utf8.append(0x08)
        case UInt8(ascii: "f"): utf8.append(0x0C)
        case UInt8(ascii: "n"): utf8.append(0x0A)
        case UInt8(ascii: "r"): utf8.append(0x0D)
        case UInt8(ascii: "t"): utf8.append(0x09)
        case UInt8(ascii: "u"):
            var scalar = UInt32(try parseHex4())
            if (0xDC00...0xDFFF).contains(scalar) {
                throw error("unpaired low surrogate \\u\(String(scalar, radix: 16))")
            }
            if (0xD800...0xDBFF).contains(scalar) {
                guard position + 1 < bytes.count, bytes[position] == UInt8(ascii: "\\"),
                      bytes[position + 1] == UInt8(ascii: "u") else {
                    throw error("high surrogate \\u\(String(scalar, radix: 16)) not followed by a low surrogate")
                }
                position += 2
                let low = UInt32(try parseHex4())
                guard (0xDC00...0xDFFF).contains(low) else {
                    throw error("high surrogate \\u\(String(scalar, radix: 16)) not followed by a low surrogate")
                }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            }
            // Surrogates were handled above, so this always forms a valid scalar.
            guard let unicodeScalar = Unicode.Scalar(scalar) else { throw error("invalid \\u escape") }
            UTF8.encode(unicodeScalar) { utf8.append($0) }
        default:
            position -= 1
            throw error("invalid escape \\\(describeCurrent())")
        }
    }

    private mutating func parseHex4() throws(HeaderJSONError) -> UInt16 {
        guard position + 4 <= bytes.count else { throw error("truncated \\u escape") }
        var value: UInt16 = 0
        for _ in 0..<4 {
            let byte = bytes[position]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw error("expected a hex digit in \\u escape, found \(describeCurrent())")
            }
            value = value << 4 | UInt16(digit)
            position += 1
        }
        return value
    }
}

/// Appends `string` as a JSON string literal (quotes included). Non-ASCII stays raw UTF-8.
package func appendJSONString(_ string: String, to out: inout [UInt8]) {
    out.append(UInt8(ascii: "\""))
    // Header strings are short and rarely need escaping: one pass over contiguous UTF-8 decides.
    var contiguous = string
    let copiedAsIs = contiguous.withUTF8 { utf8 in
        guard !utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) else { return false }
        out.append(contentsOf: utf8)
        return true
    }
    if copiedAsIs {
        out.append(UInt8(ascii: "\""))
        return
    }
    for byte in string.utf8 {
        switch byte {
        case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
        case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
        case 0x0A: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
        case 0x0D: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
        case 0x09: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
        case 0..<0x20:
            let hex: StaticString = "0123456789abcdef"
            appendASCII("\\u00", to: &out)
            out.append(hex.utf8Start[Int(byte >> 4)])
            out.append(hex.utf8Start[Int(byte & 0xF)])
        default: out.append(byte)
        }
    }
    out.append(UInt8(ascii: "\""))
}

/// Appends the decimal digits of a non-negative integer.
package func appendJSONInteger(_ value: Int, to out: inout [UInt8]) {
    precondition(value >= 0, "header integers are non-negative")
    var digitCount = 1
    var power = 10
    while digitCount < 19 && value >= power {
        digitCount += 1
        power &*= 10
    }
    let end = out.count + digitCount
    out.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: digitCount))
    var rest = value
    for index in stride(from: end - 1, through: end - digitCount, by: -1) {
        out[index] = UInt8(ascii: "0") + UInt8(rest % 10)
        rest /= 10
    }
}

/// Appends literal header text without an intermediate allocation.
func appendASCII(_ text: StaticString, to out: inout [UInt8]) {
    text.withUTF8Buffer { out.append(contentsOf: $0) }
}
