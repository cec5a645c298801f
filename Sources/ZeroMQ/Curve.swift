import CZeroMQ

/// A CURVE key that is not 40 characters of Z85 encoding 32 bytes.
public struct InvalidCurveKey: Error, CustomStringConvertible, Sendable {
    public let reason: String
    public var description: String { "invalid CURVE key: \(reason)" }
}

/// CURVE keys as ZeroMQ writes them: 32 bytes, Z85-encoded as 40 printable characters.
public enum ZMQCurve {
    /// Characters of a Z85 key.
    public static let keyLength = 40

    /// A fresh keypair from libzmq (libsodium's randomness).
    public static func generateKeypair() throws(ZMQError) -> (publicKey: String, secretKey: String) {
        var publicKey = [CChar](repeating: 0, count: keyLength + 1)
        var secretKey = [CChar](repeating: 0, count: keyLength + 1)
        try check(zmq_curve_keypair(&publicKey, &secretKey), "zmq_curve_keypair")
        return (string(publicKey), string(secretKey))
    }

    /// The public key that belongs to a Z85 secret key.
    public static func publicKey(forSecret secretKey: String) throws -> String {
        try validate(secretKey)
        var publicKey = [CChar](repeating: 0, count: keyLength + 1)
        try check(zmq_curve_public(&publicKey, secretKey), "zmq_curve_public")
        return string(publicKey)
    }

    /// Throws, naming what is wrong, unless `key` is 40 Z85 characters encoding 32 bytes.
    public static func validate(_ key: String) throws(InvalidCurveKey) {
        _ = try decode(key)
    }

    public static func isValid(_ key: String) -> Bool { (try? decode(key)) != nil }

    /// The 32 raw bytes of a Z85 key.
    public static func decode(_ key: String) throws(InvalidCurveKey) -> [UInt8] {
        let characters = Array(key.utf8)
        guard characters.count == keyLength else {
            throw InvalidCurveKey(reason: "expected \(keyLength) Z85 characters, got \(characters.count)")
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(32)
        for group in stride(from: 0, to: keyLength, by: 5) {
            var value: UInt64 = 0
            for position in group..<group + 5 {
                guard let digit = z85Digits[Int(characters[position])] else {
                    throw InvalidCurveKey(reason: "'\(Character(Unicode.Scalar(characters[position])))' at position \(position + 1) is not a Z85 character")
                }
                value = value * 85 + UInt64(digit)
            }
            // Five Z85 digits can exceed 32 bits; such a group encodes no 4 bytes.
            guard value <= UInt64(UInt32.max) else {
                throw InvalidCurveKey(reason: "characters \(group + 1)-\(group + 5) overflow 32 bits")
            }
            bytes += [UInt8(value >> 24), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff)]
        }
        return bytes
    }

    /// The Z85 text of 32 raw key bytes (as ZAP hands a client's key over).
    public static func encode(_ bytes: [UInt8]) throws(InvalidCurveKey) -> String {
        guard bytes.count == 32 else { throw InvalidCurveKey(reason: "expected 32 bytes, got \(bytes.count)") }
        var text = [CChar](repeating: 0, count: keyLength + 1)
        _ = zmq_z85_encode(&text, bytes, bytes.count)
        return string(text)
    }

    private static func string(_ characters: [CChar]) -> String {
        String(decoding: characters.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static let z85Alphabet = Array("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#".utf8)

    /// Digit value of each byte, nil for bytes outside the alphabet.
    private static let z85Digits: [UInt8?] = {
        var digits = [UInt8?](repeating: nil, count: 256)
        for (value, character) in z85Alphabet.enumerated() { digits[Int(character)] = UInt8(value) }
        return digits
    }()
}
