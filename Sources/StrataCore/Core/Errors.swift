/// A programmer error inside the library (wrong shapes, bad axis): stops with a message that names
/// the op and the shapes involved. Unlike `precondition`, `fatalError` keeps its message in
/// optimised builds.
@usableFromInline
package func shapeFail(_ op: String, _ message: String) -> Never {
    fatalError("\(op): \(message)")
}

@inlinable
package func shapeCheck(_ condition: @autoclosure () -> Bool, _ op: String, _ message: @autoclosure () -> String) {
    if !condition() { shapeFail(op, message()) }
}

@usableFromInline
package func fmt(_ shape: [Int]) -> String { "[" + shape.map(String.init).joined(separator: ", ") + "]" }

/// Normalises a possibly negative axis for a tensor of the given rank.
@usableFromInline
package func normalizeAxis(_ axis: Int, rank: Int, op: String) -> Int {
    let a = axis < 0 ? axis + rank : axis
    shapeCheck(a >= 0 && a < Swift.max(rank, 1), op, "axis \(axis) is out of range for rank \(rank)")
    return a
}
