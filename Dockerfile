# One image for web, workers and the simulator (docker-compose.yml picks the command).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN useradd --create-home llmperf && mkdir -p /app/var/spool && chown -R llmperf /app
USER llmperf
EXPOSE 8000
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "llmperf_site.asgi:application"]
