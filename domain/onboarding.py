"""The first-run checklist: which setup steps a merchant has done, from facts about the
account. Pure: the facts are read by services.onboarding."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SetupFacts:
    """What the account holds today, each read from the real rows."""

    store_connected: bool  # an enabled SHOPIFY connection
    mail_connected: bool  # an enabled GMAIL or CUSTOM_EMAIL connection
    playbooks_reviewed: bool  # the playbooks page was opened, or a playbook changed
    plan_chosen: bool  # a paid plan (not the trial) that is active or past due


@dataclass(frozen=True)
class SetupStep:
    key: str
    title: str
    hint: str  # what to do there
    href: str  # the page where the step is done
    done: bool


def setup_steps(facts: SetupFacts) -> list[SetupStep]:
    """The steps in the order a merchant takes them."""
    return [
        SetupStep(
            "connect_store",
            "Connect your Shopify store",
            "Install deskpilot on the store whose orders it should look up and act on.",
            "/connections#shopify-h",
            facts.store_connected,
        ),
        SetupStep(
            "connect_mail",
            "Connect your support mail",
            "Connect a Gmail mailbox, or create a forwarding address and forward mail to it.",
            "/connections#gmail-h",
            facts.mail_connected,
        ),
        SetupStep(
            "review_playbooks",
            "Review the playbooks",
            "See what deskpilot may do on its own, and switch off what it should not.",
            "/playbooks",
            facts.playbooks_reviewed,
        ),
        SetupStep(
            "choose_plan",
            "Choose a plan",
            "The trial is for trying: a plan keeps replies and suggestions going after it.",
            "/usage#plans",
            facts.plan_chosen,
        ),
    ]


def setup_complete(steps: list[SetupStep]) -> bool:
    return all(step.done for step in steps)
