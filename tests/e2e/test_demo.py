"""`./dev demo`'s script, run for real against the e2e stack (a practice of its own, its PDFs in a
temporary folder): it ends well and prints each step of the second round, a write-off, a bill
split between two parents with each parent's own email, a Good Faith Estimate and a payment plan
whose first installment the autopay run charged."""

import asyncio
import re
import sys
import uuid
from pathlib import Path

import pytest

from tests.processes import ROOT, Stack

pytestmark = pytest.mark.e2e


async def test_the_demo_runs_every_step_for_real(stack: Stack, tmp_path: Path) -> None:
    env = {**stack.env, "DEMO_PRACTICE": f"practice-demo-{uuid.uuid4().hex[:8]}", "DEMO_OUT": str(tmp_path)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "scripts.demo", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=600)
    text = out.decode()
    assert proc.returncode == 0, text[-4000:]
    assert re.search(r"wrote off \$30\.00 on bill #\d+ .*adjusted \$30\.00", text), text
    split = re.findall(r"split bill #(\d+) to (Grace|Sam) Park .*code (\d{6}) → bill-\1\.pdf", text)
    assert {who for _, who, _ in split} == {"Grace", "Sam"} and len({n for n, _, _ in split}) == 2, text
    for number, who, _ in split:
        assert re.search(rf"emailed {who.lower()}\.park\.\w+@example\.com: .*#{number}\b", text), text
        assert (tmp_path / f"bill-{number}.pdf").read_bytes().startswith(b"%PDF")
    estimate = re.search(
        r"Good Faith Estimate #\d+ for Wei Chen: \$3,420\.00 .* → (good-faith-estimate-\d+\.pdf)", text
    )
    assert estimate and (tmp_path / estimate.group(1)).read_bytes().startswith(b"%PDF"), text
    assert re.search(r"installment 1 of 3 charged to Grace Park's card by the autopay run: \$\d+\.\d\d \(paid", text)
    assert re.search(r"billing: bill #\d+ paid \$\d+\.\d\d, balance", text), text
