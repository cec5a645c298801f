import Safetensors

/// libFuzzer entry: any bytes are a safetensors file to read; an accepted one must be consistent.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    guard let reader = try? SafetensorsReader(bytes, maxHeaderBytes: 1 << 20) else { return 0 }
    for tensor in reader.tensors {
        let view = reader.bytes(of: tensor)
        precondition(view.count == tensor.dataRange.count, "tensor \(tensor.name): view of \(view.count) bytes")
        precondition(reader.tensor(named: tensor.name) != nil, "tensor \(tensor.name) not found by name")
        if let base = view.baseAddress {
            precondition(base >= bytes.baseAddress! && base + view.count <= bytes.baseAddress! + size, "view outside the file")
        }
    }
    return 0
}
