FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY journeys ./journeys
COPY definitions ./definitions
COPY activities ./activities
COPY workers ./workers
RUN pip install --no-cache-dir .
CMD ["journeys", "worker"]
