#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Solves f(x) = target for an increasing f on a bracket [lo, hi] with f(lo) <= target <= f(hi):
/// Newton steps on `slope`, with bisection whenever a step would leave the bracket (or the slope
/// is 0 or infinite), so it converges even where f jumps or is flat. Returns the root with a
/// bracket around it: the root alone when a Newton step converged, else a bracket narrower than
/// `tolerance` (which pinches a jump of f when the root is one).
func solveIncreasing(
    _ target: Double, lo: Double, hi: Double, start: Double, tolerance: Double = 1e-14,
    _ f: (Double) -> Double, slope: (Double) -> Double
) -> (root: Double, lo: Double, hi: Double) {
    var lo = lo, hi = hi
    var x = min(max(start, lo), hi)
    for _ in 0..<300 {
        if hi - lo <= tolerance { break }
        let excess = f(x) - target
        if excess == 0 { return (x, x, x) }
        if excess < 0 { lo = x } else { hi = x }
        let derivative = slope(x)
        if derivative > 0, derivative.isFinite {
            let newton = x - excess / derivative
            // Checked before the bracket: at the root the step can land on the bound just set.
            if abs(newton - x) <= tolerance {
                let root = min(max(newton, lo), hi)
                return (root, root, root)
            }
            if newton > lo, newton < hi {
                x = newton
                continue
            }
        }
        x = (lo + hi) / 2
    }
    return ((lo + hi) / 2, lo, hi)
}

/// ∫_a^b f by adaptive Simpson over fixed initial panels, so a narrow feature cannot slip between
/// the first samples.
func integrate(
    from a: Double, to b: Double, panels: Int = 64, tolerance: Double = 1e-13, _ f: (Double) -> Double
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
        let lo = a + Double(panel) * width, hi = panel == panels - 1 ? b : lo + width
        let flo = f(lo), fmid = f((lo + hi) / 2), fhi = f(hi)
        total += adapt(lo, hi, flo, fmid, fhi, simpson(lo, hi, flo, fmid, fhi), tolerance / Double(panels), 40)
    }
    return total
}

/// log Γ(x) for x > 0 (lgamma_r: plain lgamma writes the global signgam, a data race).
func logGamma(_ x: Double) -> Double {
    var sign: Int32 = 0
    return lgamma_r(x, &sign)
}

func logBeta(_ a: Double, _ b: Double) -> Double {
    logGamma(a) + logGamma(b) - logGamma(a + b)
}

/// The regularized incomplete beta function I_x(a, b), by the Lentz continued fraction
/// (Numerical Recipes 6.4), using I_x(a, b) = 1 - I_{1-x}(b, a) where the fraction converges slowly.
func regularizedIncompleteBeta(_ x: Double, _ a: Double, _ b: Double) -> Double {
    if x <= 0 { return 0 }
    if x >= 1 { return 1 }
    let logFront = a * log(x) + b * log1p(-x) - logBeta(a, b)
    if x < (a + 1) / (a + b + 2) {
        return exp(logFront) * betaContinuedFraction(x, a, b) / a
    }
    return 1 - exp(logFront) * betaContinuedFraction(1 - x, b, a) / b
}

private func betaContinuedFraction(_ x: Double, _ a: Double, _ b: Double) -> Double {
    let tiny = 1e-300
    let qab = a + b, qap = a + 1, qam = a - 1
    var c = 1.0
    var d = 1 - qab * x / qap
    if abs(d) < tiny { d = tiny }
    d = 1 / d
    var h = d
    for m in 1...10_000 {
        let m = Double(m), m2 = 2 * m
        var aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1 + aa * d
        if abs(d) < tiny { d = tiny }
        c = 1 + aa / c
        if abs(c) < tiny { c = tiny }
        d = 1 / d
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1 + aa * d
        if abs(d) < tiny { d = tiny }
        c = 1 + aa / c
        if abs(c) < tiny { c = tiny }
        d = 1 / d
        let delta = d * c
        h *= delta
        if abs(delta - 1) < 4e-16 { break }
    }
    return h
}
