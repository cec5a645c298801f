/// A validated view of a safetensors file held in memory. Tensor bytes are not copied: `bytes(of:)`
/// slices the buffer given to `init`, which the caller must keep alive while the reader is used.
public struct SafetensorsReader {
    /// Every tensor, ordered by position in the data region.
    public let tensors: [TensorInfo]
    public let metadata: [String: String]
    /// Absolute offset of the data region (8 + header length).
    public let dataStart: Int
    /// The whole file.
    public let buffer: UnsafeRawBufferPointer
    private let indexByName: [String: Int]

    /// Parses and validates the header and offsets; does not touch tensor data.
    /// - Parameter maxHeaderBytes: longest header accepted; the reference implementation allows 100 MB.
    public init(_ bytes: UnsafeRawBufferPointer, maxHeaderBytes: Int = 100_000_000) throws(SafetensorsError) {
        guard bytes.count >= 8 else {
            throw SafetensorsError(.truncated, "file is \(bytes.count) bytes, shorter than the 8-byte header length")
        }
        let headerLength = UInt64(littleEndian: bytes.loadUnaligned(as: UInt64.self))
        guard headerLength <= UInt64(max(maxHeaderBytes, 0)) else {
            throw SafetensorsError(.headerTooLarge, "header is \(headerLength) bytes, over the limit of \(maxHeaderBytes)")
        }
        guard headerLength <= UInt64(bytes.count - 8) else {
            throw SafetensorsError(
                .truncated, "header claims \(headerLength) bytes but only \(bytes.count - 8) follow the length")
        }
        let dataStart = 8 + Int(headerLength)
        let dataLength = bytes.count - dataStart

        let json: HeaderJSON
        do {
            json = try HeaderJSONParser.parse(UnsafeRawBufferPointer(rebasing: bytes[8..<dataStart]))
        } catch {
            if let duplicate = error.duplicateKey, duplicate.depth == 1 {
                throw SafetensorsError(.duplicateName, "tensor \"\(duplicate.key)\" appears more than once")
            }
            throw SafetensorsError(.invalidHeader, error.message)
        }
        guard case .object(let names, let values) = json else {
            throw SafetensorsError(.invalidHeader, "header must be a JSON object, found \(json.kindName)")
        }

        var metadata: [String: String] = [:]
        var tensors: [TensorInfo] = []
        tensors.reserveCapacity(names.count)
        for (name, value) in zip(names, values) {
            if name == "__metadata__" {
                metadata = try Self.parseMetadata(value)
            } else {
                tensors.append(try Self.parseTensor(name: name, value))
            }
        }

        // Sorting by (begin, end) puts empty tensors before a non-empty one starting at the same
        // offset, so a simple walk checks that the ranges tile the data region.
        tensors.sort { ($0.dataRange.lowerBound, $0.dataRange.upperBound) < ($1.dataRange.lowerBound, $1.dataRange.upperBound) }
        var expectedBegin = 0
        for tensor in tensors {
            guard tensor.dataRange.lowerBound == expectedBegin else {
                let problem = tensor.dataRange.lowerBound < expectedBegin ? "overlaps the previous tensor" : "leaves a gap"
                throw SafetensorsError(
                    .invalidOffsets,
                    "tensor \"\(tensor.name)\" starts at \(tensor.dataRange.lowerBound) but the previous tensor ends at \(expectedBegin): it \(problem)")
            }
            expectedBegin = tensor.dataRange.upperBound
        }
        // Tensors that tile correctly but run past the end mean the file was cut short.
        if expectedBegin > dataLength, let last = tensors.last {
            throw SafetensorsError(
                .truncated,
                "tensor \"\(last.name)\" ends at data byte \(expectedBegin) but the data region is only \(dataLength) bytes")
        }
        guard expectedBegin == dataLength else {
            throw SafetensorsError(
                .invalidOffsets,
                "tensor data ends at \(expectedBegin) but the data region is \(dataLength) bytes: \(dataLength - expectedBegin) trailing bytes")
        }

        self.tensors = tensors
        self.metadata = metadata
        self.dataStart = dataStart
        self.buffer = bytes
        var indexByName: [String: Int] = [:]
        indexByName.reserveCapacity(tensors.count)
        for (index, tensor) in tensors.enumerated() { indexByName[tensor.name] = index }
        self.indexByName = indexByName
    }

    fileprivate init(rebasing reader: SafetensorsReader, onto bytes: UnsafeRawBufferPointer) {
        tensors = reader.tensors
        metadata = reader.metadata
        dataStart = reader.dataStart
        buffer = bytes
        indexByName = reader.indexByName
    }

    public func tensor(named name: String) -> TensorInfo? {
        indexByName[name].map { tensors[$0] }
    }

    /// The tensor's bytes, in place in the buffer given to `init`.
    public func bytes(of tensor: TensorInfo) -> UnsafeRawBufferPointer {
        let absolute = (dataStart + tensor.dataRange.lowerBound)..<(dataStart + tensor.dataRange.upperBound)
        precondition(absolute.upperBound <= buffer.count, "tensor \"\(tensor.name)\" is not from this file")
        return UnsafeRawBufferPointer(rebasing: buffer[absolute])
    }

    private static func parseMetadata(_ value: HeaderJSON) throws(SafetensorsError) -> [String: String] {
        guard case .object(let keys, let values) = value else {
            throw SafetensorsError(.invalidHeader, "\"__metadata__\" must be an object, found \(value.kindName)")
        }
        var metadata: [String: String] = [:]
        for (key, entry) in zip(keys, values) {
            guard case .string(let text) = entry else {
                throw SafetensorsError(
                    .invalidHeader, "metadata value for \"\(key)\" must be a string, found \(entry.kindName)")
            }
            metadata[key] = text
        }
        return metadata
    }

    private static func parseTensor(name: String, _ value: HeaderJSON) throws(SafetensorsError) -> TensorInfo {
        guard case .object(let keys, let fields) = value else {
            throw SafetensorsError(.invalidHeader, "tensor \"\(name)\" must be an object, found \(value.kindName)")
        }
        var dtypeTag: String?
        var shapeValues: [HeaderJSON]?
        var offsetValues: [HeaderJSON]?
        for (key, field) in zip(keys, fields) {
            switch (key, field) {
            case ("dtype", .string(let tag)): dtypeTag = tag
            case ("shape", .array(let values)): shapeValues = values
            case ("data_offsets", .array(let values)): offsetValues = values
            case ("dtype", _):
                throw SafetensorsError(.invalidHeader, "tensor \"\(name)\": dtype must be a string, found \(field.kindName)")
            case ("shape", _), ("data_offsets", _):
                throw SafetensorsError(.invalidHeader, "tensor \"\(name)\": \(key) must be an array, found \(field.kindName)")
            default:
                throw SafetensorsError(.invalidHeader, "tensor \"\(name)\": unexpected key \"\(key)\"")
            }
        }
        guard let dtypeTag, let shapeValues, let offsetValues else {
            let missing = [("dtype", dtypeTag == nil), ("shape", shapeValues == nil), ("data_offsets", offsetValues == nil)]
                .filter(\.1).map(\.0).joined(separator: ", ")
            throw SafetensorsError(.invalidHeader, "tensor \"\(name)\" is missing \(missing)")
        }
        guard let dtype = DType(rawValue: dtypeTag) else {
            throw SafetensorsError(.unknownDType, "tensor \"\(name)\" has unknown dtype \"\(dtypeTag)\"")
        }
        let shape = try integers(shapeValues, field: "shape", tensor: name)
        let offsets = try integers(offsetValues, field: "data_offsets", tensor: name)
        guard offsets.count == 2 else {
            throw SafetensorsError(
                .invalidHeader, "tensor \"\(name)\": data_offsets must hold 2 integers, found \(offsets.count)")
        }
        guard offsets[0] <= offsets[1] else {
            throw SafetensorsError(
                .invalidOffsets, "tensor \"\(name)\": data_offsets [\(offsets[0]), \(offsets[1])] end before they begin")
        }
        guard let byteCount = checkedByteCount(shape: shape, dtype: dtype) else {
            throw SafetensorsError(.shapeMismatch, "tensor \"\(name)\": shape \(shape) overflows the byte size")
        }
        guard offsets[1] - offsets[0] == byteCount else {
            throw SafetensorsError(
                .shapeMismatch,
                "tensor \"\(name)\": shape \(shape) of \(dtype.rawValue) needs \(byteCount) bytes but data_offsets span \(offsets[1] - offsets[0])")
        }
        return TensorInfo(name: name, dtype: dtype, shape: shape, dataRange: offsets[0]..<offsets[1])
    }

    private static func integers(_ values: [HeaderJSON], field: String, tensor: String) throws(SafetensorsError) -> [Int] {
        var result: [Int] = []
        result.reserveCapacity(values.count)
        for value in values {
            guard case .integer(let integer) = value else {
                throw SafetensorsError(
                    .invalidHeader, "tensor \"\(tensor)\": \(field) must hold integers, found \(value.kindName)")
            }
            guard integer <= UInt64(Int.max) else {
                throw SafetensorsError(.invalidHeader, "tensor \"\(tensor)\": \(field) value \(integer) is too large")
            }
            result.append(Int(integer))
        }
        return result
    }
}

/// Reads safetensors files, remembering the last header it parsed. A producer sends one header
/// with every batch of one shape, and the same header bytes over a file of the same size validate
/// to the same tensors every time, so a repeat costs a comparison of the header bytes instead of
/// a parse. A file that fails to parse leaves the remembered header as it was.
public struct SafetensorsHeaderCache {
    /// The length prefix and JSON of the last file parsed.
    private var header: [UInt8] = []
    private var fileSize = -1
    private var maxHeaderBytes = -1
    private var parsed: SafetensorsReader?

    public init() {}

    /// What `SafetensorsReader(bytes, maxHeaderBytes:)` returns, or throws.
    public mutating func reader(_ bytes: UnsafeRawBufferPointer, maxHeaderBytes: Int) throws(SafetensorsError) -> SafetensorsReader {
        if let parsed, bytes.count == fileSize, maxHeaderBytes == self.maxHeaderBytes,
           header.withUnsafeBytes({ $0.elementsEqual(UnsafeRawBufferPointer(rebasing: bytes[0..<$0.count])) }) {
            return SafetensorsReader(rebasing: parsed, onto: bytes)
        }
        let reader = try SafetensorsReader(bytes, maxHeaderBytes: maxHeaderBytes)
        header = Array(bytes[0..<reader.dataStart])
        fileSize = bytes.count
        self.maxHeaderBytes = maxHeaderBytes
        parsed = reader
        return reader
    }
}
