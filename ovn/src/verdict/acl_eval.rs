//! OVN >= 24.03 splits each ACL stage in two: `<stage>_eval`, where every
//! ACL's own logical flow sets a verdict bit (`reg8[16]` allow, `reg8[17]`
//! drop, `reg8[18]` reject), and `<stage>_action`, whose few generic flows
//! apply the bit (`ls_in_acl`, `ls_in_acl_after_lb`, `ls_out_acl`). A drop
//! is therefore counted and traced in a flow no ACL owns; the ACL that
//! decided it is the eval flow of the same datapath and stage pair that set
//! the bit the action flow tests. `trace` applies this rule to the hops of
//! one path, `flows` to the rules that moved in the same interval.

/// One logical flow as both callers see it. Fields a caller does not know
/// are `None` and do not narrow the rule.
#[derive(Debug, Clone, Copy, Default)]
pub struct AclFlow<'a> {
    /// Datapath, in whatever form the caller has (name, tunnel key): only
    /// compared with the other flow's.
    pub datapath: Option<&'a str>,
    pub stage: Option<&'a str>,
    pub logical_match: Option<&'a str>,
    pub logical_actions: Option<&'a str>,
}

/// The eval stage whose verdict `action_stage` applies; `None` when
/// `action_stage` is no ACL action stage (older OVN's `ls_out_acl` drops in
/// the ACL's own flow).
pub fn eval_stage_of(action_stage: &str) -> Option<String> {
    let base = action_stage.strip_suffix("_action")?;
    (base.starts_with("ls_") && base.contains("_acl")).then(|| format!("{base}_eval"))
}

/// The verdict bit an action flow's match tests (`reg8[17] == 1` →
/// `reg8[17]`).
pub fn verdict_bit(action_match: &str) -> Option<&str> {
    action_match.match_indices("reg8[").find_map(|(at, _)| {
        let rest = &action_match[at..];
        let end = rest.find(']')? + 1;
        let (bit, tail) = rest.split_at(end);
        tail.trim_start().starts_with("== 1").then_some(bit)
    })
}

/// Whether `eval` (a flow the packet hit) decided the verdict that
/// `action` applied: same datapath, the action stage's eval stage, and,
/// when both flows' texts are known, `eval` sets the bit `action` tests.
pub fn decides(action: &AclFlow<'_>, eval: &AclFlow<'_>) -> bool {
    let Some(stage) = action.stage.and_then(eval_stage_of) else {
        return false;
    };
    if eval.stage != Some(stage.as_str()) || action.datapath != eval.datapath {
        return false;
    }
    match (
        action.logical_match.and_then(verdict_bit),
        eval.logical_actions,
    ) {
        (Some(bit), Some(acts)) => acts
            .split(';')
            .any(|a| a.trim().replace(' ', "") == format!("{bit}=1")),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Flows of `ovn-sbctl lflow-list ovn-default` on the 25.03 sandbox
    /// (NetworkPolicy default/protect-db).
    #[test]
    fn drop_bit_pairs_action_and_eval() {
        assert_eq!(
            eval_stage_of("ls_out_acl_action").as_deref(),
            Some("ls_out_acl_eval")
        );
        assert_eq!(
            eval_stage_of("ls_in_acl_after_lb_action").as_deref(),
            Some("ls_in_acl_after_lb_eval")
        );
        assert_eq!(eval_stage_of("ls_out_acl"), None);
        assert_eq!(eval_stage_of("lr_in_dnat_action"), None);
        let action = AclFlow {
            datapath: Some("3"),
            stage: Some("ls_out_acl_action"),
            logical_match: Some("reg8[17] == 1"),
            logical_actions: None,
        };
        let drop_acl = AclFlow {
            datapath: Some("3"),
            stage: Some("ls_out_acl_eval"),
            logical_match: Some(
                "reg8[30..31] == 2 && reg0[9] == 1 && (outport == @protect.db.default && ip)",
            ),
            logical_actions: Some("reg8[17] = 1; next;"),
        };
        let allow_acl = AclFlow {
            logical_actions: Some("reg8[16] = 1; reg0[1] = 1; next;"),
            ..drop_acl
        };
        assert!(decides(&action, &drop_acl));
        assert!(!decides(&action, &allow_acl));
        assert!(!decides(
            &action,
            &AclFlow {
                datapath: Some("4"),
                ..drop_acl
            }
        ));
        assert!(!decides(
            &action,
            &AclFlow {
                stage: Some("ls_in_acl_eval"),
                ..drop_acl
            }
        ));
        // a trace hop: the actions are not given, the stage pair decides
        assert!(decides(
            &AclFlow {
                logical_match: None,
                ..action
            },
            &AclFlow {
                logical_actions: None,
                ..allow_acl
            }
        ));
        assert_eq!(verdict_bit("reg8[30..31] == 0"), None);
        assert_eq!(
            verdict_bit("reg8[30..31] == 0 && reg8[18] == 1"),
            Some("reg8[18]")
        );
    }
}
