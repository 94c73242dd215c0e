// Rendered on every request, so that an answer proves a worker ran React.
export const dynamic = 'force-dynamic';

export default function Page() {
  return <p>{`hello from next, worker ${process.env.PERCORE_WORKER_ID ?? 'none'}`}</p>;
}
