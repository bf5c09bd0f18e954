//! Fuzzes the `.pte` reader: any bytes must parse or give an error, and every accessor of a
//! parsed program must return without panicking. Seed it with `tests/fixtures/pte/*.pte`.
#![no_main]

use etpkg::rt::pte::{Program, Value};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(p) = Program::parse(data) else { return };
    let _ = (p.version(), p.plan(p.plans_len()), p.constant(0));
    for c in 0..p.constants_len() as u32 + 1 {
        let _ = p.constant(c);
    }
    for i in 0..p.plans_len() {
        let plan = p.plan(i).expect("parse checked every plan");
        let _ = p.plan_named(plan.name());
        let _ = (plan.inputs().iter().sum::<i32>(), plan.outputs().iter().count());
        let _ = plan.non_const_buffer_sizes().iter().count();
        for v in 0..=plan.values_len() {
            match plan.value(v) {
                Some(Value::Tensor(t)) => {
                    let _ = (t.nbytes(), t.sizes.iter().count(), p.constant(t.data_buffer_idx));
                }
                Some(Value::IntList(l)) => {
                    let _ = l.iter().count();
                }
                Some(Value::DoubleList(l)) => {
                    let _ = l.iter().count();
                }
                Some(Value::TensorList(l) | Value::OptionalTensorList(l)) => {
                    let _ = l.iter().count();
                }
                Some(_) => {}
                None => assert_eq!(v, plan.values_len()),
            }
        }
        for k in 0..=plan.instructions_len() {
            let _ = format!("{:?}", plan.instruction(k));
        }
        for k in 0..=plan.operators_len() {
            let _ = plan.operator(k);
        }
    }
    let _ = etpkg::pte::read(data);
});
