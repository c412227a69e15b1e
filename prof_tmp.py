import time, django, os, sys
os.environ["DJANGO_SETTINGS_MODULE"]="smscampaigns.settings"
django.setup()
from django.db import connection, transaction
from marketing_activities.models import *
from marketing_activities.runner import run_create
from marketing_activities.runner.planner import plan_step
from marketing_activities.bench import bare_recipients_query
CampaignRun.objects.filter(status__in=["queued","running"]).update(status="completed")
camp = SmartCampaign.objects.get(name="Send to 1000000")
print("bare", round(min(bare_recipients_query(camp)[0] for _ in range(3)),3))
run = run_create(campaign=camp, trigger="command")
step = run.steps.get()
log=[]
def timer(execute, sql, params, many, context):
    s=time.perf_counter(); r=execute(sql, params, many, context); log.append((time.perf_counter()-s, sql[:60])); return r
t0=time.perf_counter()
with connection.execute_wrapper(timer):
    plan_step(step)
tot=time.perf_counter()-t0
print("total", round(tot,3), "sql sum", round(sum(d for d,_ in log),3), [(round(d,3), sql[:30]) for d, sql in log if d>0.02])
import cProfile, pstats
CampaignRun.objects.filter(pk=run.pk).update(status="completed")
run = run_create(campaign=camp, trigger="command")
step = run.steps.get()
pr = cProfile.Profile(); pr.enable(); plan_step(step); pr.disable()
pstats.Stats(pr).sort_stats("cumulative").print_stats(18)
