// The umbrella module: `import Strata` brings in every general-purpose target, from tensors to
// the inspection report. Face recognition is its own product, `StrataFaces`.
@_exported import StrataCore
@_exported import StrataNN
@_exported import StrataData
@_exported import StrataInspect
@_exported import StrataClassic
