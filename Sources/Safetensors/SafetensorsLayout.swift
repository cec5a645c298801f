/// Plans a safetensors file without its data: the header bytes and where each tensor goes. Tensors
/// are laid out back to back in entry order after a header padded so the data starts 8-aligned.
public struct SafetensorsLayout: Sendable {
    public struct Entry: Sendable, Equatable {
        public let name: String
        public let dtype: DType
        public let shape: [Int]

        public init(name: String, dtype: DType, shape: [Int]) {
            self.name = name
            self.dtype = dtype
            self.shape = shape
        }
    }

    /// The 8-byte little-endian length followed by the space-padded JSON header.
    public let header: [UInt8]
    /// Size of the whole file.
    public let byteCount: Int
    /// Absolute byte range of each entry, in entry order.
    public let ranges: [Range<Int>]
    private let indexByName: [String: Int]
    /// The entries' part of the JSON, which the metadata does not change.
    private let tensorJSON: [UInt8]
    private let relativeRanges: [Range<Int>]

    /// - Parameter metadata: written as `__metadata__` with keys sorted (omitted when empty), so
    ///   equal inputs give identical bytes.
    public init(entries: [Entry], metadata: [String: String]) throws(SafetensorsError) {
        var indexByName: [String: Int] = [:]
        indexByName.reserveCapacity(entries.count)
        var relativeRanges: [Range<Int>] = []
        relativeRanges.reserveCapacity(entries.count)
        var dataLength = 0
        for (index, entry) in entries.enumerated() {
            guard entry.name != "__metadata__" else {
                throw SafetensorsError(.duplicateName, "a tensor cannot be named \"__metadata__\"")
            }
            guard indexByName.updateValue(index, forKey: entry.name) == nil else {
                throw SafetensorsError(.duplicateName, "tensor \"\(entry.name)\" appears more than once")
            }
            guard let size = checkedByteCount(shape: entry.shape, dtype: entry.dtype) else {
                throw SafetensorsError(
                    .shapeMismatch, "tensor \"\(entry.name)\": shape \(entry.shape) is negative or overflows the byte size")
            }
            let (end, overflow) = dataLength.addingReportingOverflow(size)
            guard !overflow else {
                throw SafetensorsError(.shapeMismatch, "tensor \"\(entry.name)\": total data size overflows")
            }
            relativeRanges.append(dataLength..<end)
            dataLength = end
        }

        var json: [UInt8] = []
        json.reserveCapacity(entries.count * 80)
        for (entry, range) in zip(entries, relativeRanges) {
            if !json.isEmpty { json.append(UInt8(ascii: ",")) }
            appendJSONString(entry.name, to: &json)
            appendASCII(#":{"dtype":""#, to: &json)
            json.append(contentsOf: entry.dtype.rawValue.utf8)
            appendASCII(#"","shape":["#, to: &json)
            for (position, dim) in entry.shape.enumerated() {
                if position > 0 { json.append(UInt8(ascii: ",")) }
                appendJSONInteger(dim, to: &json)
            }
            appendASCII(#"],"data_offsets":["#, to: &json)
            appendJSONInteger(range.lowerBound, to: &json)
            json.append(UInt8(ascii: ","))
            appendJSONInteger(range.upperBound, to: &json)
            appendASCII("]}", to: &json)
        }
        try self.init(tensorJSON: json, relativeRanges: relativeRanges, indexByName: indexByName, metadata: metadata)
    }

    /// The same entries under other metadata: only the header is written again, and the data
    /// ranges move with its length. Equal to a layout made from the entries and `metadata`.
    public func replacingMetadata(_ metadata: [String: String]) throws(SafetensorsError) -> SafetensorsLayout {
        try SafetensorsLayout(tensorJSON: tensorJSON, relativeRanges: relativeRanges, indexByName: indexByName, metadata: metadata)
    }

    private init(
        tensorJSON: [UInt8], relativeRanges: [Range<Int>], indexByName: [String: Int], metadata: [String: String]
    ) throws(SafetensorsError) {
        var json: [UInt8] = [UInt8(ascii: "{")]
        json.reserveCapacity(64 + tensorJSON.count + metadata.count * 48)
        if !metadata.isEmpty {
            appendASCII(#""__metadata__":{"#, to: &json)
            for (position, entry) in metadata.sorted(by: { $0.key < $1.key }).enumerated() {
                if position > 0 { json.append(UInt8(ascii: ",")) }
                appendJSONString(entry.key, to: &json)
                json.append(UInt8(ascii: ":"))
                appendJSONString(entry.value, to: &json)
            }
            json.append(UInt8(ascii: "}"))
            if !tensorJSON.isEmpty { json.append(UInt8(ascii: ",")) }
        }
        json.append(contentsOf: tensorJSON)
        json.append(UInt8(ascii: "}"))
        // Pad with spaces (valid trailing JSON whitespace) so 8 + header length is a multiple of 8.
        json.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - json.count % 8) % 8))

        var header: [UInt8] = []
        header.reserveCapacity(8 + json.count)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { header.append(contentsOf: $0) }
        header.append(contentsOf: json)

        let dataStart = header.count
        let (total, overflow) = dataStart.addingReportingOverflow(relativeRanges.last?.upperBound ?? 0)
        guard !overflow else { throw SafetensorsError(.shapeMismatch, "total file size overflows") }
        self.header = header
        self.byteCount = total
        self.ranges = relativeRanges.map { ($0.lowerBound + dataStart)..<($0.upperBound + dataStart) }
        self.indexByName = indexByName
        self.tensorJSON = tensorJSON
        self.relativeRanges = relativeRanges
    }

    /// Absolute offset of the data region.
    public var dataStart: Int { header.count }

    /// Absolute byte range of the named entry.
    public func range(of name: String) -> Range<Int>? {
        indexByName[name].map { ranges[$0] }
    }
}

/// Builds a whole safetensors file in memory (for tests, tools and the feed command). Each data
/// array must hold exactly the tensor's bytes, little-endian.
public func encodeSafetensors(
    _ tensors: [(name: String, dtype: DType, shape: [Int], data: [UInt8])],
    metadata: [String: String] = [:]
) throws(SafetensorsError) -> [UInt8] {
    let layout = try SafetensorsLayout(
        entries: tensors.map { SafetensorsLayout.Entry(name: $0.name, dtype: $0.dtype, shape: $0.shape) },
        metadata: metadata)
    var file = layout.header
    file.reserveCapacity(layout.byteCount)
    for (tensor, range) in zip(tensors, layout.ranges) {
        guard tensor.data.count == range.count else {
            throw SafetensorsError(
                .shapeMismatch,
                "tensor \"\(tensor.name)\": shape \(tensor.shape) of \(tensor.dtype.rawValue) needs \(range.count) bytes, data has \(tensor.data.count)")
        }
        file.append(contentsOf: tensor.data)
    }
    return file
}
