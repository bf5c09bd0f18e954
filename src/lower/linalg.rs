//! Rules for matrix products (`linear`, `addmm`, `mm`, `bmm`, `matmul`) and attention.
//! Invariant: `linear` stays whole so a fused kernel can take it.

use super::args::Ctx;
use super::{LowerError, Lowerer, Rule};
use crate::ir::{Op, ValueId};

pub(super) const RULES: &[(&str, Rule)] = &[
    ("linear.default", linear),
    ("addmm.default", addmm),
    ("mm.default", matmul),
    ("bmm.default", matmul),
    ("matmul.default", matmul),
    ("scaled_dot_product_attention.default", sdpa),
    ("_scaled_dot_product_flash_attention_for_cpu.default", sdpa),
];

fn linear(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let mut ins = vec![ctx.tensor(lw, "input")?, ctx.tensor(lw, "weight")?];
    if let Some(b) = ctx.opt_tensor(lw, "bias")? {
        ins.push(b);
    }
    Ok(vec![Some(lw.emit(Op::Linear, ins)?)])
}

fn addmm(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let bias = ctx.tensor(lw, "self")?;
    let a = ctx.tensor(lw, "mat1")?;
    let b = ctx.tensor(lw, "mat2")?;
    let alpha = ctx.opt_scalar("alpha")?.map_or(1.0, |s| s.as_f64());
    let beta = ctx.opt_scalar("beta")?.map_or(1.0, |s| s.as_f64());
    Ok(vec![Some(
        lw.emit(Op::Addmm { alpha, beta }, vec![bias, a, b])?,
    )])
}

fn matmul(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let a = ctx.tensor(lw, "self")?;
    let other = if ctx.get("mat2").is_some() {
        "mat2"
    } else {
        "other"
    };
    let b = ctx.tensor(lw, other)?;
    Ok(vec![Some(lw.emit(Op::MatMul, vec![a, b])?)])
}

/// Both the composite and the CPU flash-attention form; the latter's second output (the
/// log-sum-exp) has no lowering and must be unused.
fn sdpa(lw: &mut Lowerer, ctx: &Ctx) -> Result<Vec<Option<ValueId>>, LowerError> {
    let q = ctx.tensor(lw, "query")?;
    let k = ctx.tensor(lw, "key")?;
    let v = ctx.tensor(lw, "value")?;
    if ctx.float_or("dropout_p", 0.0)? != 0.0 {
        return Err(lw.invalid(
            "attention dropout is on; export the model in eval mode (`model.eval()`)".into(),
        ));
    }
    if ctx.bool_or("enable_gqa", false)? {
        return Err(
            lw.invalid("grouped-query attention (`enable_gqa=True`) is not supported".into())
        );
    }
    let causal = ctx.bool_or("is_causal", false)?;
    let scale = ctx.opt_float("scale")?;
    let mut ins = vec![q, k, v];
    if let Some(m) = ctx.opt_tensor(lw, "attn_mask")? {
        ins.push(m);
    }
    let out = lw.emit(Op::Sdpa { causal, scale }, ins)?;
    let mut outs = vec![Some(out)];
    outs.resize(ctx.output_count().max(1), None);
    Ok(outs)
}
