/// The element types a safetensors file can hold, spelled as the format's dtype tags.
public enum DType: String, Sendable, CaseIterable {
    case F64, F32, F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8, BOOL, F8_E4M3, F8_E5M2

    /// Bytes per element.
    public var byteCount: Int {
        switch self {
        case .F64, .I64, .U64: 8
        case .F32, .I32, .U32: 4
        case .F16, .BF16, .I16, .U16: 2
        case .I8, .U8, .BOOL, .F8_E4M3, .F8_E5M2: 1
        }
    }
}

/// One tensor of a safetensors file: its name, element type, shape and where its bytes are.
public struct TensorInfo: Sendable, Equatable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    /// Byte range relative to the start of the data region.
    public let dataRange: Range<Int>

    public init(name: String, dtype: DType, shape: [Int], dataRange: Range<Int>) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.dataRange = dataRange
    }

    /// Product of the shape (1 for a 0-d tensor). Readers and layouts check it cannot overflow.
    public var elementCount: Int { shape.reduce(1, *) }
}

/// The number of elements and bytes of a tensor, or nil when either overflows `Int` or a dimension
/// is negative. Shared by the reader and the writer so both accept exactly the same shapes.
func checkedByteCount(shape: [Int], dtype: DType) -> Int? {
    var elements = 1
    for dim in shape {
        guard dim >= 0 else { return nil }
        let (product, overflow) = elements.multipliedReportingOverflow(by: dim)
        guard !overflow else { return nil }
        elements = product
    }
    let (bytes, overflow) = elements.multipliedReportingOverflow(by: dtype.byteCount)
    return overflow ? nil : bytes
}
