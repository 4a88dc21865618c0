from typing import Any

from django.template.defaultfilters import filesizeformat

from retention.forecast import cost_forecast
from vicirec import clock
from vicirec.commands import StageCommand


def money(value: float) -> str:
    """Dollars and cents; below a dollar to a hundredth of a cent (a small installation's bill)."""
    return f"${value:,.2f}" if abs(value) >= 1 else f"${value:.4f}"


class Command(StageCommand):
    help = (
        "For each policy: today's stored bytes and monthly storage cost, and the cost of a month of calls over "
        "the policy's whole retention (storage, requests, retrieval, egress), on every R2 and S3 storage class."
    )

    def run(self, **options: Any) -> Any:
        return cost_forecast(now=clock.now())

    def summary(self, data: dict[str, Any]) -> str:
        lines = []
        for row in data["policies"]:
            month = row["last_30_days"]
            lines.append(
                f"{row['policy']}: class {row['storage_class']}, {row['bucket_days']} days in the bucket; stored "
                f"{row['stored']['objects']} recordings ({filesizeformat(row['stored']['bytes'])}); last 30 days "
                f"{month['recordings']} recordings ({filesizeformat(month['bytes'])}), {month['reads']} playbacks"
            )
            lines.append(f"  {'provider / class':<36}{'per month today':>16}{'month of calls, whole retention':>34}")
            for offer in row["offers"]:
                mark = "*" if offer["chosen"] else " "
                note = "  (costs more than Standard)" if offer["refused"] else ""
                lines.append(
                    f"{mark} {offer['label']:<36}{money(offer['monthly_storage_today']):>16}"
                    f"{money(offer['whole_retention']['total']):>34}{note}"
                )
        totals = data["whole_retention_total"]
        lines.append(
            f"Every policy in its own class (*): {money(totals['r2'])} on R2, {money(totals['s3'])} on S3 per month "
            f"of calls over their retention; {data['cheaper'].upper()} is cheaper by {money(data['saving'])}."
        )
        return "\n".join(lines)
