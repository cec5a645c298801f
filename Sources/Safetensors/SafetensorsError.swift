/// Why a safetensors file or layout was refused. `kind` is stable (for callers to branch on);
/// `message` is for humans and names the tensor or key at fault.
public struct SafetensorsError: Error, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable, Equatable, CaseIterable {
        /// The buffer ends before the 8-byte length prefix, the header it announces, or the end of
        /// the last tensor (offsets that tile correctly but run past the end of the buffer).
        case truncated
        /// The announced header length exceeds the reader's `maxHeaderBytes`.
        case headerTooLarge
        /// The header is not valid JSON of the expected shape (or not UTF-8).
        case invalidHeader
        /// A tensor's dtype tag is not one of the known tags.
        case unknownDType
        /// Data offsets are reversed, overlap, leave gaps or do not end at the end of the buffer.
        case invalidOffsets
        /// A tensor's byte size does not match its shape and dtype (or the size overflows).
        case shapeMismatch
        /// Two tensors share a name (or a tensor is named `__metadata__` when writing).
        case duplicateName
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { "safetensors \(kind.rawValue): \(message)" }
}
