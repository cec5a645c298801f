/// A distribution of x on [0, 1], before x is mapped into [sigma_min, sigma_max].
public enum Distribution: Sendable, Equatable {
    /// x ~ U[0, 1] (Mochi 1's default).
    case uniform
    /// x = sigmoid(n), n ~ N(mean, std²) (SD3's logit-normal; mean > 0 favours noise).
    case logitNormal(mean: Double, std: Double)

    /// The name the configuration file uses for this distribution.
    public var name: String {
        switch self {
        case .uniform: "uniform"
        case .logitNormal: "logit_normal"
        }
    }

    /// The first invalid parameter as (config key, problem), or nil when every parameter is valid.
    func invalidParameter() -> (parameter: String, message: String)? {
        switch self {
        case .uniform:
            return nil
        case let .logitNormal(mean, std):
            if !mean.isFinite { return ("mean", "must be finite, got \(mean)") }
            if !(std.isFinite && std > 0) { return ("std", "must be > 0 and finite, got \(std)") }
            return nil
        }
    }

    /// Density of x on [0, 1].
    func unitPDF(_ x: Double) -> Double {
        guard x >= 0, x <= 1 else { return 0 }
        switch self {
        case .uniform:
            return 1
        case let .logitNormal(mean, std):
            // The density tends to 0 at both ends.
            guard x > 0, x < 1 else { return 0 }
            let z = (logit(x) - mean) / std
            return StandardNormal.pdf(z) / (std * x * (1 - x))
        }
    }

    /// P(X <= x).
    func unitCDF(_ x: Double) -> Double {
        if x <= 0 { return 0 }
        if x >= 1 { return 1 }
        switch self {
        case .uniform:
            return x
        case let .logitNormal(mean, std):
            return StandardNormal.cdf((logit(x) - mean) / std)
        }
    }

    /// The exact inverse of `unitCDF` for u in [0, 1].
    func unitQuantile(_ u: Double) -> Double {
        switch self {
        case .uniform:
            return u
        case let .logitNormal(mean, std):
            return sigmoid(mean + std * StandardNormal.quantile(u))
        }
    }

    /// E[X]. The logit-normal mean has no closed form: integrate sigmoid(mean + std z) φ(z) over z.
    func unitMean() -> Double {
        switch self {
        case .uniform:
            return 0.5
        case let .logitNormal(mean, std):
            return integrate(from: -12, to: 12, panels: 48, tolerance: 1e-14) { z in
                sigmoid(mean + std * z) * StandardNormal.pdf(z)
            }
        }
    }
}

/// Adaptive Simpson over fixed initial panels, so a narrow feature cannot slip between the
/// first samples. φ(12) is about 1e-32, so truncating the normal there loses nothing.
private func integrate(
    from a: Double, to b: Double, panels: Int, tolerance: Double, _ f: (Double) -> Double
) -> Double {
    func simpson(_ a: Double, _ b: Double, _ fa: Double, _ fm: Double, _ fb: Double) -> Double {
        (b - a) / 6 * (fa + 4 * fm + fb)
    }
    func adapt(_ a: Double, _ b: Double, _ fa: Double, _ fm: Double, _ fb: Double,
               _ whole: Double, _ tolerance: Double, _ depth: Int) -> Double {
        let m = (a + b) / 2
        let flm = f((a + m) / 2), frm = f((m + b) / 2)
        let left = simpson(a, m, fa, flm, fm), right = simpson(m, b, fm, frm, fb)
        let difference = left + right - whole
        if depth == 0 || abs(difference) <= 15 * tolerance {
            return left + right + difference / 15
        }
        return adapt(a, m, fa, flm, fm, left, tolerance / 2, depth - 1)
            + adapt(m, b, fm, frm, fb, right, tolerance / 2, depth - 1)
    }
    let width = (b - a) / Double(panels)
    var total = 0.0
    for panel in 0..<panels {
        let lo = a + Double(panel) * width, hi = lo + width
        let flo = f(lo), fmid = f((lo + hi) / 2), fhi = f(hi)
        total += adapt(lo, hi, flo, fmid, fhi, simpson(lo, hi, flo, fmid, fhi),
                       tolerance / Double(panels), 40)
    }
    return total
}
