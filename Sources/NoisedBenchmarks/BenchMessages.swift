import Foundation
import NoiseKernel
import NoiseKernelCore
import Safetensors
import Synchronization

/// The send time a bench message carries: 20 ASCII digits of CLOCK_MONOTONIC nanoseconds in a
/// `bench.sent_ns` U8 tensor. The daemon copies input tensors it does not noise to its output, so
/// the consumer reads the producer's send time from the noised message; the relay copies the
/// digits across. A tensor rather than a metadata value, so that every batch of a case has the
/// same header, as the batches of a producer of one latent shape do.
package enum SendStamp {
    package static let tensorName = "bench.sent_ns"
    package static let width = 20
    static var entry: SafetensorsLayout.Entry { .init(name: tensorName, dtype: .U8, shape: [width]) }
    /// How `SafetensorsLayout`, which writes every bench and daemon header, writes the tensor.
    private static let needle = Array("\"\(tensorName)\":{\"dtype\":\"U8\",\"shape\":[\(width)],\"data_offsets\":[".utf8)

    /// Offset of the stamp's digits in a safetensors message, found from its header alone.
    package static func offset(in message: UnsafeRawBufferPointer) -> Int? {
        guard message.count >= 8 else { return nil }
        let dataStart = 8 &+ Int(clamping: min(UInt64(littleEndian: message.loadUnaligned(as: UInt64.self)), 1 << 40))
        let headerEnd = min(message.count, dataStart)
        let last = headerEnd - needle.count - 1
        guard last >= 8 else { return nil }
        search: for start in 8...last {
            for (i, byte) in needle.enumerated() where message[start + i] != byte { continue search }
            var begin = 0, index = start + needle.count
            while index < headerEnd, case let digit = message[index] &- UInt8(ascii: "0"), digit < 10, begin < 1 << 40 {
                begin = begin * 10 + Int(digit)
                index += 1
            }
            guard index > start + needle.count, index < headerEnd, message[index] == UInt8(ascii: ",") else { return nil }
            return dataStart + begin + width <= message.count ? dataStart + begin : nil
        }
        return nil
    }

    package static func write(_ nanoseconds: UInt64, to base: UnsafeMutableRawPointer, at offset: Int) {
        var value = nanoseconds
        for i in stride(from: width - 1, through: 0, by: -1) {
            base.storeBytes(of: UInt8(ascii: "0") + UInt8(value % 10), toByteOffset: offset + i, as: UInt8.self)
            value /= 10
        }
    }

    package static func read(_ message: UnsafeRawBufferPointer, at offset: Int) -> UInt64? {
        guard offset >= 0, offset + width <= message.count else { return nil }
        var value: UInt64 = 0
        for i in 0..<width {
            let digit = message[offset + i] &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            value = value &* 10 &+ UInt64(digit)
        }
        return value
    }
}

/// The messages of one pipeline bench case, built once: what the producer sends (a latent batch)
/// and what the relay sends per batch (the size of noised's output: z_t, ε, σ, noise ids, header).
package struct BenchMessages: Sendable {
    package let input: MessageTemplate
    package let relayOutput: MessageTemplate
    /// Bytes of z_0 in one input message.
    package let latentBytes: Int

    /// A batch of `samples` rows of z_0 totalling `latentBytes` bytes of `dtype`.
    package init(latentBytes: Int, dtype: ElementType, samples: Int = 2) throws {
        guard latentBytes > 0, samples > 0, latentBytes % (dtype.byteCount * samples) == 0 else {
            throw BenchError("message size \(latentBytes) bytes is not a positive multiple of \(samples) \(dtype.rawValue) samples")
        }
        try self.init(shape: [samples, latentBytes / dtype.byteCount / samples], dtype: dtype)
    }

    /// A batch of z_0 of `shape`, batch first.
    package init(shape: [Int], dtype: ElementType) throws {
        guard shape.count >= 2, shape.allSatisfy({ $0 > 0 }) else {
            throw BenchError("latent shape \(shape) must be a batch and at least one more dimension, each positive")
        }
        let samples = shape[0], elements = shape.reduce(1, *)
        let latentBytes = elements * dtype.byteCount
        self.latentBytes = latentBytes
        let metadata = ["source": "noised bench"]
        input = try MessageTemplate(
            entries: [.init(name: "latents", dtype: dtype.dtype, shape: shape), SendStamp.entry], metadata: metadata
        ) { data in
            // Finite values spread over [-2, 2): the daemon's non-finite check passes them.
            for index in 0..<elements { dtype.store(Float(index % 4093) / 1024 - 2, to: data, at: index) }
        }
        var outputMetadata = metadata
        for key in ["noised.protocol", "noised.seed", "noised.seq", "noised.step"] { outputMetadata[key] = "0000000000" }
        relayOutput = try MessageTemplate(
            entries: [
                .init(name: "z_t", dtype: dtype.dtype, shape: shape), .init(name: "eps", dtype: dtype.dtype, shape: shape),
                .init(name: "noise_id", dtype: .U64, shape: [samples]), .init(name: "sigma", dtype: .F32, shape: [samples]),
                SendStamp.entry,
            ],
            metadata: outputMetadata
        ) { data in data.initializeMemory(as: UInt8.self, repeating: 0x3F, count: 2 * latentBytes) }
    }
}

/// One safetensors message's bytes and where its send stamp lives.
// @unchecked: the bytes are written once in init; afterwards only the send stamp changes, by the one sender.
package final class MessageTemplate: @unchecked Sendable {
    package let bytes: UnsafeMutableRawBufferPointer
    package let stampOffset: Int

    init(entries: [SafetensorsLayout.Entry], metadata: [String: String],
         fillData: (UnsafeMutableRawPointer) -> Void) throws {
        let layout = try SafetensorsLayout(entries: entries, metadata: metadata)
        bytes = .allocate(byteCount: layout.byteCount, alignment: 64)
        bytes.copyBytes(from: layout.header)
        fillData(bytes.baseAddress! + layout.header.count)
        guard let offset = SendStamp.offset(in: UnsafeRawBufferPointer(bytes)) else {
            bytes.deallocate()
            throw BenchError("bench message lacks its \(SendStamp.tensorName) stamp")
        }
        stampOffset = offset
        SendStamp.write(0, to: bytes.baseAddress!, at: offset)
    }

    deinit { bytes.deallocate() }

    package var count: Int { bytes.count }
}

/// Copies of one template, each filled once and reused, so that a bench sender hands ZeroMQ a
/// ready buffer per message (zero-copy, as the daemon does) instead of a fresh allocation.
// @unchecked: the lists of buffers are behind Mutexes; each buffer has one owner at a time.
final class PrefilledBuffers: @unchecked Sendable {
    // @unchecked: an address handed from owner to owner, never used by two at once.
    struct Address: @unchecked Sendable { let pointer: UnsafeMutableRawPointer }

    let template: MessageTemplate
    private let idle = Mutex<[Address]>([])
    private let owned = Mutex<[Address]>([])

    init(_ template: MessageTemplate) { self.template = template }

    deinit { owned.withLock { $0.forEach { $0.pointer.deallocate() } } }

    func take() -> Address {
        if let reused = idle.withLock({ $0.popLast() }) { return reused }
        let fresh = Address(pointer: .allocate(byteCount: template.count, alignment: 64))
        fresh.pointer.copyMemory(from: template.bytes.baseAddress!, byteCount: template.count)
        owned.withLock { $0.append(fresh) }
        return fresh
    }

    /// Safe from ZeroMQ's I/O thread.
    func recycle(_ address: Address) { idle.withLock { $0.append(address) } }
}
