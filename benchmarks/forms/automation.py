"""A plan's paired A/B targets, and its schedule with regression gates."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.validators import validate_email

from benchmarks.models import Endpoint, Plan, PlanAB, PlanSchedule, Run

AB_SLOTS = ("b", "c", "d")


class PlanABForm(forms.Form):
    """Variant A is the plan's own endpoint; B, C and D are optional, in that order."""

    mode = forms.ChoiceField(choices=PlanAB.Mode.choices, initial=PlanAB.Mode.SIMULTANEOUS)

    def __init__(self, *args: Any, plan: Plan, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = Endpoint.objects.filter(team=plan.team).exclude(pk=plan.endpoint_id)
        for slot in AB_SLOTS:
            self.fields[f"variant_{slot}"] = forms.ModelChoiceField(
                choices, required=False, label=f"Variant {slot.upper()} endpoint"
            )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        picked = [data.get(f"variant_{slot}") for slot in AB_SLOTS]
        gap = next((i for i, p in enumerate(picked) if p is None), len(picked))
        if any(p is not None for p in picked[gap:]):
            raise forms.ValidationError("Fill the variants in order: B first, then C, then D.")
        chosen = [p for p in picked if p is not None]
        if len({p.pk for p in chosen}) != len(chosen):
            raise forms.ValidationError("Each variant needs a different endpoint.")
        data["endpoints"] = chosen
        return data


class PlanScheduleForm(forms.ModelForm):
    webhook_url = forms.URLField(
        max_length=500, required=False, assume_scheme="https", help_text="POSTed a JSON alert on regression"
    )

    class Meta:
        model = PlanSchedule
        fields = [
            "every",
            "hour_utc",
            "baseline_run",
            "threshold_pct",
            "noise_aware",
            "rules",
            "webhook_url",
            "email_to",
        ]
        widgets = {"rules": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args: Any, plan: Plan, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Only this plan's finished runs can be the baseline (a forged id is "not a valid choice").
        self.fields["baseline_run"].queryset = Run.objects.filter(
            plan=plan, status=Run.Status.FINISHED
        ).order_by("-created_at")

    def clean_hour_utc(self) -> int:
        hour = self.cleaned_data["hour_utc"]
        if not 0 <= hour <= 23:
            raise forms.ValidationError("An hour from 0 to 23.")
        return hour

    def clean_threshold_pct(self) -> float:
        value = self.cleaned_data["threshold_pct"]
        if value <= 0:
            raise forms.ValidationError("More than 0 %.")
        return value

    def clean_rules(self) -> str:
        from runner import parse_rule

        lines = [line.strip() for line in self.cleaned_data["rules"].splitlines() if line.strip()]
        for line in lines:
            try:
                parse_rule(line)
            except ValueError as exc:
                raise forms.ValidationError(str(exc)) from None
        return "\n".join(lines)

    def clean_email_to(self) -> str:
        addresses = [a.strip() for a in self.cleaned_data["email_to"].split(",") if a.strip()]
        for address in addresses:
            validate_email(address)
        return ", ".join(addresses)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("every", "off") != "off" and not data.get("baseline_run"):
            self.add_error("baseline_run", "A scheduled plan needs a baseline run to compare with.")
        return data
