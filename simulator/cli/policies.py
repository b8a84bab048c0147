"""``inmail-sim policies list|show|diff``: the built-in presets and the rules of any policy."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING, TextIO

from simulator.cli.common import EXIT_OK, InputError
from simulator.core.config import Policy
from simulator.io.policy_rules import policy_rules, rule_text, rules_side_by_side
from simulator.scenario import load_scenario

if TYPE_CHECKING:
    from simulator.cli.common import Subcommands


def add_policies_parser(commands: Subcommands) -> None:
    """``inmail-sim policies [list|show NAME|diff A B]``."""
    policies = commands.add_parser("policies", help="list, show or compare credit policies",
                                   description="Without arguments: list the built-in presets. A policy NAME is "
                                               "a preset name or FILE.yaml:POLICY for a policy of a scenario.")
    actions = policies.add_subparsers(dest="policies_command", metavar="ACTION")
    show = actions.add_parser("show", help="every rule of one policy, with its source")
    show.add_argument("name", metavar="NAME")
    diff = actions.add_parser("diff", help="what differs between two policies, rule by rule")
    diff.add_argument("a", metavar="A")
    diff.add_argument("b", metavar="B")
    diff.add_argument("--all", action="store_true", help="list the rules that agree as well")
    actions.add_parser("list", help="list the built-in presets (the default)")


def resolve_policy(name: str) -> Policy:
    """A preset name, or ``FILE.yaml:POLICY`` for a policy of a scenario file."""
    from simulator.core.presets import PRESETS, preset

    file, colon, policy_name = name.rpartition(":")
    if colon and file.endswith((".yaml", ".yml")):
        scenario = load_scenario(file)
        if policy_name not in scenario.policies:
            raise InputError(f"{file} has no policy {policy_name!r}; its policies: {', '.join(scenario.policies)}")
        return scenario.policies[policy_name]
    if name not in PRESETS:
        raise InputError(f"unknown policy {name!r}; presets: {', '.join(PRESETS)} "
                         "(or FILE.yaml:POLICY for a scenario's policy)")
    return preset(name)


def cmd_policies_list(out: TextIO) -> int:
    """``inmail-sim policies [list]``: the presets, one line each."""
    from simulator.core.presets import PRESETS

    print("built-in policy presets (use in a scenario as `preset: NAME`):", file=out)
    for name, make in PRESETS.items():
        print(f"  {name:<20} {make().description}", file=out)
    print("\ninmail-sim policies show NAME     every rule of a policy, with its source", file=out)
    print("inmail-sim policies diff A B     what differs between two policies (NAME or FILE.yaml:POLICY)",
          file=out)
    return EXIT_OK


def _rule_family(rule: str) -> str:
    """The group a rule is printed in: its first dotted part (``before.X`` for the pre-change phase)."""
    parts = rule.split(".")
    return ".".join(parts[:2]) if parts[0] == "before" else parts[0]


def cmd_policies_show(name: str, out: TextIO) -> int:
    """``inmail-sim policies show NAME``: every rule, grouped by family, each group with its sources."""
    policy = resolve_policy(name)
    print(f"policy {policy.name}: {policy.description}", file=out)
    rules = policy_rules(policy)
    width = max(len(r) for r in rules) + 2
    notes = list(policy.sources)
    shown: set[int] = set()
    families = list(dict.fromkeys(_rule_family(r) for r in rules))
    for family in families:
        print("", file=out)
        for rule, value in rules.items():
            if _rule_family(rule) == family:
                print(f"  {rule:<{width}} {value}", file=out)
        base = family.removeprefix("before.")
        for i, (key, note) in enumerate(notes):
            if i not in shown and (key == base or key.startswith(base + ".")):
                shown.add(i)
                label = "source" if key == base else f"source ({key})"
                print(textwrap.fill(f"{label}: {note}", 100, initial_indent="      ",
                                    subsequent_indent="        "), file=out)
    rest = [n for i, n in enumerate(notes) if i not in shown]
    if rest:
        print("\nother notes:", file=out)
        for key, note in rest:
            print(textwrap.fill(f"{key}: {note}", 100, initial_indent="  ", subsequent_indent="    "), file=out)
    return EXIT_OK


def _shorten(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, ending in ``...`` when cut."""
    return text if len(text) <= width else text[: width - 3] + "..."


def cmd_policies_diff(a: str, b: str, show_all: bool, out: TextIO) -> int:
    """``inmail-sim policies diff A B``: the rules on which A and B differ (all rules with ``--all``)."""
    policy_a, policy_b = resolve_policy(a), resolve_policy(b)
    keys, (rules_a, rules_b), differ = rules_side_by_side([policy_a, policy_b])
    shown = keys if show_all else differ
    rule_width = max([len(k) for k in shown] + [4])
    width = max(12, (100 - rule_width - 5) // 2)
    print(f"{'rule':<{rule_width}} {_shorten(policy_a.name, width):<{width}} "
          f"{_shorten(policy_b.name, width):<{width}}".rstrip(), file=out)
    for key in shown:
        mark = " <" if key in differ and show_all else ""
        print(f"{key:<{rule_width}} {_shorten(rule_text(rules_a, key), width):<{width}} "
              f"{_shorten(rule_text(rules_b, key), width):<{width}}".rstrip() + mark, file=out)
    if not differ:
        print(f"{policy_a.name} and {policy_b.name} agree on every rule", file=out)
    else:
        print(f"\n{len(differ)} rule{'s' if len(differ) != 1 else ''} differ", file=out)
    return EXIT_OK
