import NoisedProtocol

/// libFuzzer entry: any bytes are a feedback report; an accepted one has one loss per σ.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard let report = try? FeedbackReport(message: UnsafeRawBufferPointer(start: data, count: size)) else { return 0 }
    precondition(report.step >= 0, "negative step \(report.step)")
    precondition(report.sigmas.count == report.losses.count, "\(report.sigmas.count) sigmas, \(report.losses.count) losses")
    return 0
}
