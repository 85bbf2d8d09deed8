// The parameter block every kernel reads (`Params` in src/ops/mod.rs).

struct Params {
    rows: u32,      // rows of W in this dispatch (one chunk of the tensor)
    k: u32,         // elements per row of W (= length of each column of X)
    row_bytes: u32, // bytes per row of W
    cols: u32,      // columns of X and Y (1 for matvec)
    y_offset: u32,  // index in Y of this chunk's first row
    y_stride: u32,  // elements between two columns of Y (all rows of the tensor)
    grid_x: u32,    // workgroups along x, to linearize 2-D dispatches
    n_out: u32,     // dequant: elements to write in this dispatch
    row0: u32,      // dequant and matmul: first row of the W binding this dispatch reads
    split1: u32,    // matvec with three outputs (SPLIT): rows [0, split1) go to Y,
    split2: u32,    // [split1, split2) to Y2, the rest to Y3
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
