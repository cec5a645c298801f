import Safetensors

/// The acknowledged input's envelope: a request is `[ticket, batch]`, its reply `[ticket, status]`
/// (docs/protocol.md, "Acknowledged input").
public enum AckEnvelope {
    /// A ticket is exactly this many bytes: a little-endian UInt64 the producer chooses.
    public static let ticketBytes = 8
}

/// What the daemon answers for one acknowledged batch: the status frame's JSON object.
public enum AckReply: Equatable, Sendable {
    /// Noised and queued on the output socket as output message `noised.seq` = seq.
    case ok(seq: UInt64)
    /// Refused for `reason`; sending the same batch again gives the same answer.
    case rejected(reason: String, detail: String)
    /// Taken, but the daemon stopped before it could queue the output; send it again.
    case unsent(detail: String)

    /// The `status` field: ok, rejected or unsent.
    public var status: String {
        switch self {
        case .ok: "ok"
        case .rejected: "rejected"
        case .unsent: "unsent"
        }
    }

    /// The status frame: one JSON object, keys in a fixed order.
    public var encoded: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64)
        func field(_ key: String, _ value: String, first: Bool = false) {
            out.append(UInt8(ascii: first ? "{" : ","))
            appendJSONString(key, to: &out)
            out.append(UInt8(ascii: ":"))
            appendJSONString(value, to: &out)
        }
        switch self {
        case .ok(let seq):
            field("status", status, first: true)
            out.append(contentsOf: Array(#","seq":"#.utf8) + Array(String(seq).utf8))
        case .rejected(let reason, let detail):
            field("status", status, first: true)
            field("reason", reason)
            field("detail", detail)
        case .unsent(let detail):
            field("status", status, first: true)
            field("detail", detail)
        }
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// Reads a status frame, as a producer does.
    public init(status: UnsafeRawBufferPointer) throws(ProtocolError) {
        let json: HeaderJSON
        do { json = try HeaderJSONParser.parse(status) } catch {
            throw ProtocolError(.badEnvelope, "reply status is not a JSON object: \(error.message)")
        }
        guard case .object(let keys, let values) = json else {
            throw ProtocolError(.badEnvelope, "reply status is not a JSON object")
        }
        let fields = Dictionary(zip(keys, values), uniquingKeysWith: { first, _ in first })
        func string(_ key: String) throws(ProtocolError) -> String {
            guard case .string(let value)? = fields[key] else {
                throw ProtocolError(.badEnvelope, "reply status has no string \"\(key)\"")
            }
            return value
        }
        switch try string("status") {
        case "ok":
            guard case .integer(let seq)? = fields["seq"] else {
                throw ProtocolError(.badEnvelope, "an ok reply has no integer \"seq\"")
            }
            self = .ok(seq: seq)
        case "rejected":
            self = .rejected(reason: try string("reason"), detail: try string("detail"))
        case "unsent":
            self = .unsent(detail: try string("detail"))
        case let other:
            throw ProtocolError(.badEnvelope, "unknown reply status \"\(other)\"")
        }
    }
}
