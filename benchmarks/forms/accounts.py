"""Sign-up, teams and their members."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm

from benchmarks.models import Membership, Team


class SignupForm(UserCreationForm):
    email = forms.EmailField(required=True)

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username", "email")

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip()
        if get_user_model().objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("An account with this email already exists.")
        return email


class TeamForm(forms.ModelForm):
    class Meta:
        model = Team
        fields = ["name"]


class MemberAddForm(forms.Form):
    identifier = forms.CharField(label="Username or email", max_length=254)
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.MEMBER)


class RetentionForm(forms.Form):
    raw_records_days = forms.IntegerField(
        label="Keep raw request records for (days)",
        min_value=1,
        max_value=36500,
        required=False,
        help_text="Blank keeps them forever. After this many days from a run's end its per-request "
        "records are deleted; its summary, comparison sample and per-second charts stay.",
    )
